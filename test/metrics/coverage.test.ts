/**
 * Do the intervals mean what they say? On synthetic evaluations whose truth is known, over many
 * seeds: the 95 % interval of a mean CLIP score covers the true mean, and the interval of a
 * paired difference the true difference, about 95 % of the time; under no difference the paired
 * permutation test rejects about 5 % of the time. Small on purpose (4 × 4 images, 120 trials,
 * 500 resamples).
 */
import { Effect } from "effect"
import { assert, beforeAll, describe, expect, it } from "vitest"
import { SeededRandom } from "../../adapters/data/seeded-random.ts"
import type { EvaluationEvidence } from "../../framework/metrics/evaluation-evidence.ts"
import { evaluationIntervals } from "../../framework/metrics/evaluation-intervals.ts"
import { compareStrategies, Incomparable } from "../../framework/metrics/strategy-comparison.ts"
import { evidenceOf, referenceSet } from "./evidence-fixture.ts"

const trials = 120
const draws = 20
const settings = { level: 0.95, resamples: 500, seed: 0 }
/** True mean CLIP score of each strategy's seen prompt, and the spread of the shared noise and of each image. */
const truth = { a: 32, b: 30, noise: 2, image: 1.5 }

let template: EvaluationEvidence

beforeAll(async () => {
  const shape = {
    prompts: [{ split: "seen" as const, looks: 1, clip: 0 }, { split: "unseen" as const, looks: 2, clip: 0 }],
    seeds: Array.from({ length: draws }, (_, i) => i),
    side: 4,
    dim: 2
  }
  const evidence = await Effect.runPromise(evidenceOf(shape, 1, referenceSet(4, 4, 3, 2)))
  // No embeddings: only the scores vary between trials.
  template = { ...evidence, images: evidence.images.map(({ embedding: _, ...image }) => image), reference: { ...evidence.reference } }
})

/** One trial: each noise draw shifts both strategies' scores alike (shared starting noise), each image adds its own. */
const trial = (t: number, meanA: number, meanB: number) => {
  const random = new SeededRandom(2024, t)
  const shared = Array.from({ length: draws }, () => truth.noise * random.normal())
  const scored = (mean: number) => ({
    ...template,
    images: template.images.map((image) => ({ ...image, clip: (image.promptIndex === 0 ? mean : 20) + shared[image.seed]! + truth.image * random.normal() }))
  })
  return { a: scored(meanA), b: scored(meanB) }
}

/** Long loops hand the event loop back between trials, or the test worker's heartbeat times out. */
const breathe = () => new Promise((resolve) => setImmediate(resolve))

const differenceOf = (a: EvaluationEvidence, b: EvaluationEvidence, seed: number) => {
  const replicate = (evidence: EvaluationEvidence) => ({
    evidence,
    estimates: Effect.runSync(evaluationIntervals(evidence, { ...settings, resamples: 2 }, [])).estimates
  })
  const result = Effect.runSync(compareStrategies({ name: "a", replicates: [replicate(a)] }, { name: "b", replicates: [replicate(b)] }, { ...settings, seed }))
  if (result instanceof Incomparable) throw new Error(result.reason)
  expect(result.test).toBe("paired permutation")
  const difference = result.differences["alignment.seen"]
  assert.isDefined(difference, "the difference of alignment.seen")
  return difference
}

describe("coverage of the intervals on synthetic data with a known truth", () => {
  it("the interval of a strategy's mean CLIP score covers the true mean at about the nominal rate", async () => {
    let covered = 0
    for (let t = 0; t < trials; t++) {
      await breathe()
      const { a } = trial(t, truth.a, truth.b)
      const interval = Effect.runSync(evaluationIntervals(a, { ...settings, seed: t }, [])).estimates["alignment.seen"]!
      if (interval.low <= truth.a && truth.a <= interval.high) covered++
    }
    // 95 % ± about 3 binomial standard deviations of 120 trials (2 %), the bootstrap's known shortfall with 20 draws below.
    expect(covered / trials).toBeGreaterThan(0.88)
    expect(covered / trials).toBeLessThan(0.99)
  }, 300_000)

  it("the paired interval of a difference covers the true difference at about the nominal rate, and the test finds it", async () => {
    let covered = 0
    let rejected = 0
    for (let t = 0; t < trials; t++) {
      await breathe()
      const { a, b } = trial(t, truth.a, truth.b)
      const d = differenceOf(a, b, t)
      if (d.low <= truth.a - truth.b && truth.a - truth.b <= d.high) covered++
      if (d.p <= 0.05) rejected++
    }
    expect(covered / trials).toBeGreaterThan(0.88)
    expect(covered / trials).toBeLessThan(0.99)
    // A difference of 2 with image noise 1.5 over 20 pairs (z ≈ 4): the test's power is near 1.
    expect(rejected / trials).toBeGreaterThan(0.9)
  }, 300_000)

  it("with no true difference, the paired permutation test rejects at about 5 %", async () => {
    let rejected = 0
    for (let t = 0; t < trials; t++) {
      await breathe()
      const { a, b } = trial(1000 + t, truth.a, truth.a)
      if (differenceOf(a, b, t).p <= 0.05) rejected++
    }
    expect(rejected / trials).toBeGreaterThan(0.01)
    expect(rejected / trials).toBeLessThan(0.1)
  }, 300_000)
})
