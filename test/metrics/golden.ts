import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { expect } from "vitest"

/** Reading the fixtures that tools/make_metric_goldens.py writes. */

export const fixturePath = (name: string) => fileURLToPath(new URL(`../fixtures/metrics/${name}`, import.meta.url))

export const readGolden = <T = any>(name: string): T => JSON.parse(readFileSync(fixturePath(name), "utf8")) as T

const bytes = (b64: string) => {
  const buffer = Buffer.from(b64, "base64")
  return buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength)
}

export const float32s = (b64: string) => new Float32Array(bytes(b64))
export const uint16s = (b64: string) => new Uint16Array(bytes(b64))
export const uint8s = (b64: string) => new Uint8Array(bytes(b64))

/** The script writes non-finite numbers as strings, since JSON has none. */
export const goldenNumber = (x: number | string): number =>
  typeof x === "number" ? x : x === "NaN" ? NaN : x === "Infinity" ? Infinity : x === "-Infinity" ? -Infinity : Number.NaN

/**
 * The goldens' tolerance: 1e-6 relative, with an absolute floor of 1e-12 for values that are
 * zero in exact arithmetic (a correlation of 0, a distance between identical sets).
 */
export const expectGolden = (actual: number, expected: number | string, label: string) => {
  const e = goldenNumber(expected)
  if (!Number.isFinite(e)) {
    expect(actual, label).toBe(e)
    return
  }
  const tolerance = 1e-6 * Math.abs(e) + 1e-12
  if (!(Math.abs(actual - e) <= tolerance)) {
    expect.fail(`${label}: ${actual} differs from the golden ${e} by ${Math.abs(actual - e)} (> ${tolerance})`)
  }
}

export const expectGoldenMatrix = (actual: number[][], expected: Array<Array<number | string>>, label: string) => {
  expect(actual.length, label).toBe(expected.length)
  actual.forEach((row, d) => {
    expect(row.length, label).toBe(expected[d]!.length)
    row.forEach((v, a) => expectGolden(v, expected[d]![a]!, `${label}[${d}][${a}]`))
  })
}
