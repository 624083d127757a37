import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { checkedMoments } from "../../framework/metrics/metric-input.ts"
import { amplitudeStatistics } from "../../framework/sar/normalisation.ts"

/** A seeded stream, so the inputs are the same on every run. */
const stream = (seed: number) => () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
  return seed / 2 ** 32
}

describe("checkedMoments", () => {
  it("gives framework/sar/normalisation.ts's mean and std bit for bit, with and without a mask", () => {
    const next = stream(3)
    const data = Float32Array.from({ length: 30_000 }, () => -Math.log(next() + 1e-12) * 0.3)
    const mask = Uint8Array.from({ length: data.length }, () => (next() > 0.3 ? 1 : 0))
    for (const m of [undefined, mask]) {
      const ours = Effect.runSync(checkedMoments({ name: "x", width: 300, height: 100, data, ...(m ? { mask: m } : {}) }))
      const theirs = amplitudeStatistics(data, m)
      expect(ours.mean).toBe(theirs.mean)
      expect(ours.std).toBe(theirs.std)
      expect(ours.count).toBe(theirs.count)
    }
  })
})
