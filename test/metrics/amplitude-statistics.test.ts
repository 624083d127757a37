import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { amplitudeStatistics, QUANTILES } from "../../framework/metrics/amplitude-statistics.ts"
import type { SampleImage } from "../../framework/metrics/metric-input.ts"
import { expectGolden, float32s, readGolden, uint8s } from "./golden.ts"

const golden = readGolden("amplitude-statistics.json")

const KEYS = [
  "count",
  "mean",
  "std",
  "cv",
  "enl",
  ...QUANTILES.map(([k]) => k),
  "logCumulant1",
  "logCumulant2",
  "logCumulant3",
  "gammaLooks",
  "g0Alpha",
  "g0Gamma",
  "g0Looks"
] as const

const image = (c: any): SampleImage => ({
  name: c.name,
  width: c.width,
  height: c.height,
  data: float32s(c.data),
  ...(c.mask ? { mask: uint8s(c.mask) } : {})
})

describe("amplitude statistics match numpy / scipy", () => {
  for (const c of golden.cases) {
    it(c.name, () => {
      const stats = Effect.runSync(amplitudeStatistics(image(c)))
      for (const key of KEYS) expectGolden(stats[key], c.expected[key], `${c.name}: ${key}`)
    })
  }

  it("recovers the simulated parameters roughly (the estimators are the right ones)", () => {
    const gamma = Effect.runSync(amplitudeStatistics(image(golden.cases[0])))
    expect(gamma.gammaLooks).toBeGreaterThan(0.8 * golden.truth.gammaLooks)
    expect(gamma.gammaLooks).toBeLessThan(1.2 * golden.truth.gammaLooks)
    const g0 = Effect.runSync(amplitudeStatistics(image(golden.cases[1])))
    expect(g0.g0Alpha).toBeLessThan(0)
    expect(Math.abs(g0.g0Looks - golden.truth.g0.looks)).toBeLessThan(1.5)
  })

  it("a constant image has zero spread, infinite ENL and looks, and no G0 fit", () => {
    const stats = Effect.runSync(
      amplitudeStatistics({ name: "flat", width: 3, height: 3, data: new Float32Array(9).fill(0.25) })
    )
    expect(stats.std).toBe(0)
    expect(stats.cv).toBe(0)
    expect(stats.enl).toBe(Infinity)
    expect(stats.logCumulant2).toBe(0)
    expect(stats.gammaLooks).toBe(Infinity)
    expect(stats.g0Alpha).toBeNaN()
    expect(stats.q01).toBe(0.25)
    expect(stats.q99).toBe(0.25)
  })
})

describe("amplitude statistics refuse bad input, naming it", () => {
  const reason = (input: SampleImage) => {
    const result = Effect.runSync(Effect.either(amplitudeStatistics(input)))
    if (Either.isRight(result)) throw new Error("expected a failure")
    expect(result.left.input).toBe(input.name)
    return result.left.reason
  }
  it("NaN, with its position", () => {
    expect(reason({ name: "scene.tif", width: 2, height: 2, data: Float32Array.of(1, 2, NaN, 3) })).toBe(
      "value NaN at row 1, column 0 is not a finite number"
    )
  })
  it("NaN under the mask is ignored, NaN selected is not", () => {
    const data = Float32Array.of(1, 2, NaN, 3)
    const ok = Effect.runSync(amplitudeStatistics({ name: "m", width: 2, height: 2, data, mask: Uint8Array.of(1, 1, 0, 1) }))
    expect(ok.count).toBe(3)
    expect(ok.mean).toBe(2)
  })
  it("an empty mask", () => {
    expect(reason({ name: "m.tif", width: 2, height: 1, data: Float32Array.of(1, 2), mask: Uint8Array.of(0, 0) })).toBe(
      "the mask selects no pixel"
    )
  })
  it("a mask of another size", () => {
    expect(reason({ name: "m.tif", width: 2, height: 1, data: Float32Array.of(1, 2), mask: Uint8Array.of(1) })).toBe(
      "mask has 1 entries, but the image has 2 pixels"
    )
  })
  it("a negative amplitude", () => {
    expect(reason({ name: "neg.tif", width: 2, height: 1, data: Float32Array.of(1, -2) })).toBe(
      "amplitude -2 is negative (selected pixel 1)"
    )
  })
})
