import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { comparePairedMetrics, pairedMeanIntervals, type PairUnit, pairUnits } from "../../framework/metrics/paired-intervals.ts"

/**
 * Intervals on the paired metrics: the mean over the pairs, resampled by noise draw (the seed's samples of
 * every scene together), and two conditioned experiments compared pair by pair. Cost: < 1 s.
 */

const settings = { level: 0.95, resamples: 500, seed: 3 }

/** Scenes × seeds, a value per pair: the seed's effect (shared by its scenes) plus the scene's. */
const grid = (scenes: number, seeds: number, value: (scene: number, seed: number) => number) => {
  const units: Array<PairUnit> = []
  const values: Array<number> = []
  for (let scene = 0; scene < scenes; scene++) {
    for (let seed = 0; seed < seeds; seed++) {
      units.push({ scene, seed, sample: 0 })
      values.push(value(scene, seed))
    }
  }
  return { units, values }
}

const seedEffect = (seed: number) => Math.sin(seed * 1.7) * 0.2
const sceneEffect = (scene: number) => (scene % 4) * 0.05

describe("paired metric intervals", () => {
  it("numbers the samples of one scene and seed", () => {
    expect(pairUnits([{ scene: 0, seed: 1 }, { scene: 0, seed: 1 }, { scene: 1, seed: 1 }, { scene: 0, seed: 2 }]).map((u) => u.sample)).toEqual([0, 1, 0, 0])
  })

  it("gives the mean over the pairs with an interval around it, the same for the same seed", () => {
    const { units, values } = grid(4, 8, (scene, seed) => 0.5 + seedEffect(seed) + sceneEffect(scene))
    const a = pairedMeanIntervals(units, { layout: values }, settings, "paired").layout!
    expect(a.value).toBeCloseTo(values.reduce((s, v) => s + v, 0) / values.length, 12)
    expect(a.low).toBeLessThan(a.value)
    expect(a.high).toBeGreaterThan(a.value)
    expect(a.method).toBe("bca")
    expect(pairedMeanIntervals(units, { layout: values }, settings, "paired").layout).toEqual(a)
    expect(pairedMeanIntervals(units, { layout: values }, { ...settings, seed: 4 }, "paired").layout).not.toEqual(a)
  })

  it("resamples noise draws, not pairs: more scenes with the same per-seed means leave the interval as it is", () => {
    const four = grid(4, 8, (scene, seed) => seedEffect(seed) + sceneEffect(scene))
    // Scenes 4–7 repeat scenes 0–3: each seed's mean over its scenes is unchanged, so are the draws' resamples.
    const eight = grid(8, 8, (scene, seed) => seedEffect(seed) + sceneEffect(scene))
    const few = pairedMeanIntervals(four.units, { layout: four.values }, settings, "paired").layout!
    const many = pairedMeanIntervals(eight.units, { layout: eight.values }, settings, "paired").layout!
    expect(many.low).toBeCloseTo(few.low, 12)
    expect(many.high).toBeCloseTo(few.high, 12)
  })

  it("has no interval with a single noise draw", () => {
    const { units, values } = grid(5, 1, (scene) => sceneEffect(scene))
    const one = pairedMeanIntervals(units, { layout: values }, settings, "paired").layout!
    expect(one.method).toBe("none")
    expect(one.low).toBeNaN()
    expect(Number.isFinite(one.value)).toBe(true)
  })

  it("compares two conditioned experiments scene by scene and seed by seed", async () => {
    const b = grid(3, 8, (scene, seed) => 0.2 + seedEffect(seed) + sceneEffect(scene))
    const a = grid(3, 8, (scene, seed) => 0.5 + seedEffect(seed) + sceneEffect(scene) + 0.02 * Math.cos(seed + scene))
    // b has an extra scene a lacks: left out of the comparison.
    const extra = grid(4, 8, (scene, seed) => (scene === 3 ? 9 : 0.2 + seedEffect(seed) + sceneEffect(scene)))
    const ab = await Effect.runPromise(comparePairedMetrics(
      { name: "a", units: a.units, values: { layout: a.values } },
      { name: "b", units: extra.units, values: { layout: extra.values } },
      settings
    ))
    expect(ab.matched).toBe(24)
    expect(ab.draws).toBe(8)
    // 2⁸ = 256 ≤ 500 swaps: enumerated, and every draw favours a, so p is the exact test's smallest, 2/256.
    expect(ab.exact).toBe(true)
    const d = ab.differences.layout
    expect(d.difference).toBeCloseTo(0.3, 2)
    expect(d.low).toBeGreaterThan(0.25)
    expect(d.high).toBeLessThan(0.35)
    expect(d.p).toBeCloseTo(2 / 256, 12)
    const ba = await Effect.runPromise(comparePairedMetrics(
      { name: "b", units: b.units, values: { layout: b.values } },
      { name: "a", units: a.units, values: { layout: a.values } },
      settings
    ))
    expect(ba.differences.layout.difference).toBeCloseTo(-d.difference, 12)
    const same = await Effect.runPromise(comparePairedMetrics(
      { name: "a", units: a.units, values: { layout: a.values } },
      { name: "a2", units: a.units, values: { layout: a.values } },
      settings
    ))
    expect(same.differences.layout.difference).toBe(0)
    expect(same.differences.layout.p).toBe(1)
  })
})
