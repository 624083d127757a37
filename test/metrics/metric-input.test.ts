import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { checkedMoments, type SampleImage } from "../../framework/metrics/metric-input.ts"
import { pairwiseSum } from "../../framework/metrics/pairwise-sum.ts"
import { amplitudeStatistics } from "../../framework/sar/normalisation.ts"
import { type SarUnit, toAmplitude } from "../../framework/sar/units.ts"
import { float32s, readGolden, uint8s } from "./golden.ts"

const chain = readGolden("texture-chain.json")
const image = (c: any): SampleImage => ({ name: c.name, width: c.width, height: c.height, data: toAmplitude(float32s(c.data), c.unit as SarUnit) })

describe("checkedMoments", () => {
  it("equals numpy's mean() and std() of the selected values as float64, bit for bit", () => {
    for (const c of chain.images) {
      const m = Effect.runSync(checkedMoments(image(c)))
      expect(m.mean, c.name).toBe(c.moments.mean)
      expect(m.std, c.name).toBe(c.moments.std)
    }
    const masked = { ...image(chain.images[0]), mask: uint8s(chain.masked.mask) }
    const m = Effect.runSync(checkedMoments(masked))
    expect(m.mean).toBe(chain.masked.moments.mean)
    expect(m.std).toBe(chain.masked.moments.std)
  })

  it("agrees with framework/sar/normalisation.ts's statistics up to summation order", () => {
    const masked = { ...image(chain.images[0]), mask: uint8s(chain.masked.mask) }
    for (const input of [image(chain.images[1]), masked]) {
      const ours = Effect.runSync(checkedMoments(input))
      const theirs = amplitudeStatistics(input.data, input.mask)
      expect(ours.count).toBe(theirs.count)
      expect(Math.abs(ours.mean - theirs.mean)).toBeLessThanOrEqual(1e-14 * theirs.mean)
      expect(Math.abs(ours.std - theirs.std)).toBeLessThanOrEqual(1e-13 * theirs.std)
    }
  })
})

describe("pairwiseSum", () => {
  it("keeps a sum of negative zeros negative, as numpy does", () => {
    expect(Object.is(pairwiseSum(Float64Array.of(-0, -0, -0), 0, 3), -0)).toBe(true)
  })
  it("sums every value once whatever the length (blocks of 8, 128, and halves)", () => {
    for (const n of [1, 7, 8, 9, 127, 128, 129, 1000, 4099]) {
      const values = Float64Array.from({ length: n }, (_, i) => i + 1)
      expect(pairwiseSum(values, 0, n), `n = ${n}`).toBe((n * (n + 1)) / 2)
    }
  })
})
