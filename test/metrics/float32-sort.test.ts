import { describe, expect, it } from "vitest"
import { sortFloat32 } from "../../framework/metrics/float32-sort.ts"

/** A seeded linear congruential stream, so the inputs are the same on every run. */
const stream = (seed: number) => () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
  return seed / 2 ** 32
}

describe("sortFloat32", () => {
  it("orders negatives, zeros of both signs, denormals and large values as numbers do", () => {
    const next = stream(7)
    const values = new Float32Array(20_000)
    for (let i = 0; i < values.length; i++) {
      const kind = i % 5
      values[i] = kind === 0 ? (next() - 0.5) * 1e30 : kind === 1 ? (next() - 0.5) * 1e-40 : kind === 2 ? -0 : (next() - 0.3) * 10
    }
    values[3] = 0
    const sorted = sortFloat32(values)
    const reference = Float32Array.from(values).sort()
    expect(Array.from(sorted)).toEqual(Array.from(reference))
  })

  it("leaves its input unchanged and handles the empty array", () => {
    const values = Float32Array.of(3, 1, 2)
    expect(Array.from(sortFloat32(values))).toEqual([1, 2, 3])
    expect(Array.from(values)).toEqual([3, 1, 2])
    expect(sortFloat32(new Float32Array(0)).length).toBe(0)
  })

  it("keeps all values when every key shares its digits (skipped passes)", () => {
    const values = Float32Array.from({ length: 1000 }, () => 0.5)
    expect(Array.from(sortFloat32(values))).toEqual(Array.from(values))
  })
})
