import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { dbWindow, meanStd, percentiles as percentileWindow } from "../../framework/declaration/dataset.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import {
  amplitudeStatistics,
  combineMoments,
  emptyMoments,
  fromTrainingRange,
  meanStdOf,
  momentsOf,
  normalise,
  normaliseMeanStd,
  percentiles,
  toTrainingRange,
  validityMask
} from "../../framework/sar/normalisation.ts"
import { toAmplitude } from "../../framework/sar/units.ts"
import { realScene } from "../support/real-scene.ts"

/** numpy on the real scene (tools/make_sar_golden.py). */
const golden = JSON.parse(readFileSync("test/fixtures/data/s1-grd-golden.json", "utf8"))

const loadScene = Effect.gen(function*() {
  const io = yield* ImageIO
  const db = yield* io.read(realScene)
  return { db: db.data, amplitude: toAmplitude(db.data, "db"), width: db.width }
}).pipe(Effect.provide(ImageIOLive))

const mean = (values: Float32Array) => values.reduce((s, v) => s + v, 0) / values.length
const relative = (got: number, want: number) => Math.abs(got - want) / Math.abs(want)

describe("SAR normalisation matches numpy on the real scene", () => {
  it.effect("A / (mean + 3·std), per image, population std", () =>
    Effect.gen(function*() {
      const { amplitude, width } = yield* loadScene
      const stats = amplitudeStatistics(amplitude)
      // amplitude is float32 here, float64 in numpy: agreement to float32 precision
      expect(relative(stats.mean, golden.meanStd.mean)).toBeLessThan(1e-6)
      expect(relative(stats.std, golden.meanStd.std)).toBeLessThan(1e-6)
      expect(stats.count).toBe(268 * 217)
      const out = normalise(amplitude, meanStd())
      expect(relative(mean(out), golden.meanStd.normalisedMean)).toBeLessThan(1e-6)
      expect(out.filter((v) => v >= 1).length / out.length).toBeCloseTo(golden.meanStd.clippedFraction, 4)
      expect(Math.min(...out)).toBeGreaterThanOrEqual(0)
      expect(Math.max(...out)).toBe(1)
      golden.pixelPositions.forEach(([r, c]: [number, number], k: number) => {
        expect(out[r * width + c]).toBeCloseTo(golden.meanStd.pixels[k], 6)
      })
    }))

  it.effect("masked pixels are excluded from the statistics and come out as 0", () =>
    Effect.gen(function*() {
      const { db, amplitude, width } = yield* loadScene
      const valid = Uint8Array.from(db, (v) => (v >= -20 ? 1 : 0))
      const want = golden.meanStdMaskedDbBelowMinus20
      const stats = amplitudeStatistics(amplitude, valid)
      expect(stats.count).toBe(want.validCount)
      expect(relative(stats.mean, want.mean)).toBeLessThan(1e-6)
      expect(relative(stats.std, want.std)).toBeLessThan(1e-6)
      const out = normalise(amplitude, meanStd(), { valid })
      expect(relative(mean(out), want.normalisedMean)).toBeLessThan(1e-6)
      golden.pixelPositions.forEach(([r, c]: [number, number], k: number) => {
        const i = r * width + c
        expect(out[i]).toBeCloseTo(valid[i] ? want.pixels[k] : 0, 6)
      })
      expect(percentiles(amplitude, [2.5], valid)[0]).toBeCloseTo(golden.percentiles.p2_5Masked, 6)
    }))

  it.effect("percentiles use numpy's linear interpolation", () =>
    Effect.gen(function*() {
      const { amplitude } = yield* loadScene
      const [p1, p50, p99] = percentiles(amplitude, [1, 50, 99])
      expect(p1).toBeCloseTo(golden.percentiles.p1, 6)
      expect(p50).toBeCloseTo(golden.percentiles.p50, 6)
      expect(p99).toBeCloseTo(golden.percentiles.p99, 6)
      expect(relative(mean(normalise(amplitude, percentileWindow(1, 99))), golden.percentiles.normalisedMean)).toBeLessThan(1e-5)
    }))

  it.effect("dB window", () =>
    Effect.gen(function*() {
      const { amplitude, width } = yield* loadScene
      const out = normalise(amplitude, dbWindow(-25, 0))
      expect(relative(mean(out), golden.dbWindowMinus25To0.normalisedMean)).toBeLessThan(1e-6)
      golden.pixelPositions.forEach(([r, c]: [number, number], k: number) => {
        expect(out[r * width + c]).toBeCloseTo(golden.dbWindowMinus25To0.pixels[k], 5)
      })
    }))

  it.effect("dataset-wide statistics streamed in pieces equal the statistics of the whole", () =>
    Effect.gen(function*() {
      const { amplitude } = yield* loadScene
      const whole = amplitudeStatistics(amplitude)
      let moments = emptyMoments
      for (let start = 0; start < amplitude.length; start += 10_007) {
        moments = combineMoments(moments, momentsOf(amplitude.subarray(start, start + 10_007)))
      }
      const streamed = meanStdOf(moments)
      expect(streamed.count).toBe(whole.count)
      expect(relative(streamed.mean, whole.mean)).toBeLessThan(1e-12)
      expect(relative(streamed.std, whole.std)).toBeLessThan(1e-12)
      const given = normalise(amplitude, meanStd({ statistics: "dataset" }), { datasetStatistics: streamed })
      expect(given).toEqual(normaliseMeanStd(amplitude))
      expect(() => normalise(amplitude, meanStd({ statistics: "dataset" }))).toThrow("datasetStatistics")
    }))
})

describe("normalisation edge cases", () => {
  it("no-data and non-finite pixels are masked", () => {
    const values = Float32Array.of(1, -99, Number.NaN, Number.POSITIVE_INFINITY, 3)
    expect(Array.from(validityMask(values, -99))).toEqual([1, 0, 0, 0, 1])
    expect(Array.from(validityMask(values))).toEqual([1, 1, 0, 0, 1])
    const stats = amplitudeStatistics(values, validityMask(values, -99))
    expect(stats).toEqual({ mean: 2, std: 1, count: 2 })
  })

  it("given statistics are used as they are; a zero image stays zero", () => {
    const out = normaliseMeanStd(Float32Array.of(0, 1, 2, 10), { statistics: { mean: 1, std: 1 } })
    expect(Array.from(out)).toEqual([0, 0.25, 0.5, 1])
    expect(Array.from(normaliseMeanStd(new Float32Array(4)))).toEqual([0, 0, 0, 0])
  })

  it("maps [0, 1] to [-1, 1] and back", () => {
    const unit = Float32Array.of(0, 0.25, 1)
    expect(Array.from(toTrainingRange(unit))).toEqual([-1, -0.5, 1])
    expect(Array.from(fromTrainingRange(toTrainingRange(unit)))).toEqual([0, 0.25, 1])
  })
})
