import { Effect, Either } from "effect"
import { describe, expect, it } from "vitest"
import { GLCM_PROPERTIES, graycomatrix, graycoprops, type LevelImage } from "../../framework/metrics/glcm.ts"
import { expectGolden, expectGoldenMatrix, readGolden, uint16s, uint8s } from "./golden.ts"

const golden = readGolden("glcm.json")

const levelImage = (c: any): LevelImage => ({
  name: c.name,
  width: c.width,
  height: c.height,
  data: uint16s(c.image),
  ...(c.mask ? { mask: uint8s(c.mask) } : {})
})

const options = (c: any) => ({
  distances: c.distances,
  angles: c.angles,
  levels: c.levels,
  symmetric: c.symmetric,
  normed: c.normed
})

describe("graycomatrix / graycoprops match scikit-image 0.26", () => {
  for (const c of golden.cases) {
    it(c.name, () => {
      const glcm = Effect.runSync(graycomatrix(levelImage(c), options(c)))
      const L = c.levels
      const nd = c.distances.length
      const na = c.angles.length
      if (c.P !== null) {
        // Golden layout [i][j][d][a]; sardine's [d][a][i][j].
        for (let i = 0; i < L; i++) {
          for (let j = 0; j < L; j++) {
            for (let d = 0; d < nd; d++) {
              for (let a = 0; a < na; a++) {
                expectGolden(glcm.data[((d * na + a) * L + i) * L + j]!, c.P[((i * L + j) * nd + d) * na + a], `P[${i},${j},${d},${a}]`)
              }
            }
          }
        }
      }
      const props = graycoprops(glcm)
      for (const name of GLCM_PROPERTIES) expectGoldenMatrix(props[name], c.props[name], `${c.name}: ${name}`)
    })
  }
})

describe("graycomatrix refuses input it cannot count", () => {
  const base: LevelImage = { name: "tile.tif", width: 3, height: 2, data: Uint16Array.of(0, 1, 2, 3, 1, 0) }
  const opts = { distances: [1], angles: [0], levels: 4, symmetric: true, normed: true }
  const reason = (image: LevelImage, o = opts) => {
    const result = Effect.runSync(Effect.either(graycomatrix(image, o)))
    if (Either.isRight(result)) throw new Error("expected a failure")
    expect(result.left._tag).toBe("MetricInputError")
    expect(result.left.input).toBe("tile.tif")
    return result.left.reason
  }

  it("a grey level at or above `levels`, naming where it is", () => {
    expect(reason(base, { ...opts, levels: 3 })).toBe("grey level 3 at row 1, column 0 is outside [0, 2]")
  })
  it("an empty mask", () => {
    expect(reason({ ...base, mask: new Uint8Array(6) })).toBe("the mask selects no pixel")
  })
  it("a mask of another size", () => {
    expect(reason({ ...base, mask: new Uint8Array(5).fill(1) })).toBe("mask has 5 entries, but the image has 6 pixels")
  })
  it("data that do not fill width × height", () => {
    expect(reason({ ...base, width: 4 })).toBe("has 6 values, but 4 × 2 were expected")
  })
  it("no distance", () => {
    expect(reason(base, { ...opts, distances: [] })).toBe("at least one distance and one angle are needed")
  })
})
