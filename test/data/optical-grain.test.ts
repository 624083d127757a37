import { describe, expect, it } from "@effect/vitest"
import { SeededRandom } from "../../adapters/data/seeded-random.ts"
import { addOpticalGrain } from "../../adapters/data/synthetic/optical-grain.ts"
import { generateScene } from "../../adapters/data/synthetic/scene-generator.ts"
import { synthetic } from "../../framework/declaration/dataset.ts"

/** A flat grey scene, so that the grain is all the variation there is. */
const flat = (size: number, value: number) => new Float32Array(size * size * 3).fill(value)

/** Coefficient of variation of the first channel. */
const cvOfFirstChannel = (rgb: Float32Array) => {
  let sum = 0
  let square = 0
  const n = rgb.length / 3
  for (let p = 0; p < rgb.length; p += 3) {
    sum += rgb[p]!
    square += rgb[p]! ** 2
  }
  const mean = sum / n
  return Math.sqrt(square / n - mean * mean) / mean
}

/** CV of a unit-mean Rayleigh amplitude: √(4/π − 1). */
const rayleighCv = Math.sqrt(4 / Math.PI - 1)

describe("grain on optical synthetic scenes", () => {
  it("each scene draws its strength in [0, grain]: the pixel CV spans 0 … grain·CV(Rayleigh), the mean stays", () => {
    const cvs = Array.from({ length: 40 }, (_, scene) => cvOfFirstChannel(addOpticalGrain(flat(64, 100), new SeededRandom(7, scene), 1)))
    expect(Math.min(...cvs)).toBeLessThan(0.1 * rayleighCv)
    expect(Math.max(...cvs)).toBeGreaterThan(0.85 * rayleighCv)
    expect(Math.max(...cvs)).toBeLessThan(1.1 * rayleighCv)
    const halved = Array.from({ length: 40 }, (_, scene) => cvOfFirstChannel(addOpticalGrain(flat(64, 100), new SeededRandom(7, scene), 0.5)))
    expect(Math.max(...halved)).toBeLessThan(0.55 * rayleighCv)
    const strong = addOpticalGrain(flat(64, 100), new SeededRandom(7, cvs.indexOf(Math.max(...cvs))), 1)
    const mean = strong.reduce((a, b) => a + b, 0) / strong.length
    expect(mean).toBeGreaterThan(95)
    expect(mean).toBeLessThan(105)
  })

  it("the three channels share each pixel's factor (hue kept) and values stay in 0–255", () => {
    const rgb = new Float32Array(32 * 32 * 3).map((_, i) => [40, 120, 200][i % 3]!)
    const grained = addOpticalGrain(rgb, new SeededRandom(3, 1), 1)
    for (let p = 0; p < grained.length; p += 3) {
      expect(grained[p + 2]!).toBeLessThanOrEqual(255)
      if (grained[p + 2]! < 255) expect(grained[p + 1]! / grained[p]!).toBeCloseTo(3, 4)
    }
  })

  it("is seeded: the same declaration gives the same scene; grain changes only the pixels, not the layout or caption", () => {
    const spec = { size: 32, seed: 5, looks: 1, exclude: [], lookDirection: "right", incidenceAngle: 35 } as const
    const plain = generateScene(spec, 3, { sar: false, optical: true })
    const grained = generateScene({ ...spec, grain: 1 }, 3, { sar: false, optical: true })
    expect(generateScene({ ...spec, grain: 1 }, 3, { sar: false, optical: true }).optical).toEqual(grained.optical)
    expect(generateScene({ ...spec, grain: 0 }, 3, { sar: false, optical: true }).optical).toEqual(plain.optical)
    expect(grained.description).toBe(plain.description)
    expect(grained.layout.labels).toEqual(plain.layout.labels)
    expect(grained.optical).not.toEqual(plain.optical)
  })

  it("is refused on SAR scenes and outside 0–1, naming the field", () => {
    expect(() => synthetic({ n: 1, size: 16, grain: 0.5 })).toThrow(/grain[\s\S]*optical scenes only/)
    expect(() => synthetic({ n: 1, size: 16, modality: "optical", grain: 2 })).toThrow(/grain[\s\S]*from 0 to 1/)
    expect(synthetic({ n: 1, size: 16, modality: "optical", grain: 0.5 }).grain).toBe(0.5)
  })

  it("a grey rendering is optical only, naming the field", () => {
    expect(() => synthetic({ n: 1, size: 16, colour: "grey" })).toThrow(/colour[\s\S]*optical scenes only/)
    expect(() => synthetic({ n: 1, size: 16, modality: "optical", colour: "blue" as "grey" })).toThrow(/colour/)
    expect(synthetic({ n: 1, size: 16, modality: "optical", colour: "grey" }).colour).toBe("grey")
  })
})
