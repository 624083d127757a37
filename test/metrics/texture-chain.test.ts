import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { amplitudeDistances, domainBinning, normalisedSamples } from "../../framework/metrics/amplitude-distances.ts"
import { GLCM_PROPERTIES } from "../../framework/metrics/glcm.ts"
import type { SampleImage } from "../../framework/metrics/metric-input.ts"
import { imageTexture, setTexture, textureSetDistance } from "../../framework/metrics/texture-sets.ts"
import { type SarUnit, toAmplitude } from "../../framework/sar/units.ts"
import { expectGolden, expectGoldenMatrix, float32s, readGolden, uint8s } from "./golden.ts"

const golden = readGolden("texture-chain.json")
const settings = { levels: golden.levels, distances: golden.distances, anglesDegrees: golden.angles }

const amplitudeImage = (c: any): SampleImage => ({
  name: c.name,
  width: c.width,
  height: c.height,
  data: toAmplitude(float32s(c.data), c.unit as SarUnit)
})

describe("the SAR texture chain matches numpy + scikit-image", () => {
  for (const c of golden.images) {
    it(`${c.name}: unit conversion gives numpy's float32 amplitude`, () => {
      expect(Array.from(amplitudeImage(c).data)).toEqual(Array.from(float32s(c.amplitude)))
    })
    it(`${c.name}: normalise, quantise to ${golden.levels} levels, GLCM properties`, () => {
      const texture = Effect.runSync(imageTexture(amplitudeImage(c), settings))
      for (const name of GLCM_PROPERTIES) expectGoldenMatrix(texture[name], c.glcm[name], `${c.name}: ${name}`)
    })
  }

  it("with a mask: statistics over the selected pixels, pairs only between selected pixels", () => {
    const image = { ...amplitudeImage(golden.images[0]), mask: uint8s(golden.masked.mask) }
    const texture = Effect.runSync(imageTexture(image, settings))
    for (const name of GLCM_PROPERTIES) expectGoldenMatrix(texture[name], golden.masked.glcm[name], `masked: ${name}`)
  })
})

describe("sets: texture aggregation, Canberra distance, pooled amplitude distances", () => {
  const images = golden.images.map(amplitudeImage)
  const { sets } = golden
  const textures = images.map((image: SampleImage) => Effect.runSync(imageTexture(image, settings)))
  const meanA = setTexture(sets.a.map((k: number) => textures[k]))
  const meanB = setTexture(sets.b.map((k: number) => textures[k]))

  it("per-set means of each property", () => {
    for (const name of GLCM_PROPERTIES) {
      expectGoldenMatrix(meanA[name], sets.meanA[name], `set a: ${name}`)
      expectGoldenMatrix(meanB[name], sets.meanB[name], `set b: ${name}`)
    }
  })
  it("Canberra distance between the set means equals scipy's", () => {
    expectGolden(textureSetDistance(meanA, meanB), sets.canberra, "canberra")
    expect(textureSetDistance(meanA, meanA)).toBe(0)
  })
  it("distances between the pooled normalised samples of images of different sizes", () => {
    const pool = (ks: number[]) => {
      const parts = ks.map((k) => Effect.runSync(normalisedSamples(images[k])))
      const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0))
      parts.reduce((offset, p) => (out.set(p, offset), offset + p.length), 0)
      return out
    }
    const result = Effect.runSync(
      amplitudeDistances(
        { name: "a", samples: pool(sets.a) },
        { name: "b", samples: pool(sets.b) },
        domainBinning({ kind: "amplitude" }, golden.bins),
        golden.klPseudoCount
      )
    )
    for (const key of ["wasserstein", "ks", "kl", "js", "hellinger", "bhattacharyya"] as const) {
      expectGolden(result[key], sets.amplitude[key], key)
    }
  })
})

describe("texture edge cases", () => {
  const flat = (value: number): SampleImage => ({ name: "flat.tif", width: 4, height: 3, data: new Float32Array(12).fill(value) })
  it("a constant image lands on the top level: one grey level, correlation 1, no contrast", () => {
    const t = Effect.runSync(imageTexture(flat(0.4), { levels: 8, distances: [1], anglesDegrees: [0, 90] }))
    expect(t.mean[0]).toEqual([7, 7])
    expect(t.contrast[0]).toEqual([0, 0])
    expect(t.correlation[0]).toEqual([1, 1])
    expect(t.ASM[0]).toEqual([1, 1])
  })
  it("an all-zero image stays at level 0 instead of dividing by zero", () => {
    const t = Effect.runSync(imageTexture(flat(0), { levels: 8, distances: [1], anglesDegrees: [0] }))
    expect(t.mean[0]![0]).toBe(0)
    expect(t.entropy[0]![0]).toBe(0)
  })
  it("NaN input fails naming the image", () => {
    const bad = flat(1)
    bad.data[5] = NaN
    const result = Effect.runSync(Effect.either(imageTexture(bad, { levels: 8, distances: [1], anglesDegrees: [0] })))
    expect(Either.isLeft(result) && result.left.message).toBe("flat.tif: value NaN at row 1, column 1 is not a finite number")
  })
  it("a mask value other than 0 or 1 is refused", () => {
    const result = Effect.runSync(
      Effect.either(imageTexture({ ...flat(1), mask: new Uint8Array(12).fill(255) }, { levels: 8, distances: [1], anglesDegrees: [0] }))
    )
    expect(Either.isLeft(result) && result.left.reason).toBe("mask value 255 at row 0, column 0 is neither 0 nor 1")
  })
})
