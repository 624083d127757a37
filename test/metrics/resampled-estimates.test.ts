/**
 * The resampling space: with every weight 1 its estimates are the evaluation's metrics as the
 * metric functions compute them, and with integer weights they are the metrics of the set in
 * which each image appears that many times (what a bootstrap resample is).
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { cmmd, frechetDistance, kernelDistance } from "../../framework/metrics/embedding-distances.ts"
import type { GeneratedImage } from "../../framework/metrics/evaluation-evidence.ts"
import { GLCM_PROPERTIES } from "../../framework/metrics/glcm.ts"
import { EstimateSpace } from "../../framework/metrics/resampled-estimates.ts"
import { generatedImages, measure, referenceSet, type StrategyShape } from "./evidence-fixture.ts"

const shape: StrategyShape = {
  prompts: [{ split: "seen", looks: 1, clip: 30 }, { split: "seen", looks: 2, clip: 25 }, { split: "unseen", looks: 3, clip: 10 }],
  seeds: [0, 1, 2, 3],
  side: 24
}
/** More embedding dimensions than images: FID's trace term is taken in the images' space. */
const wide = { shape: { ...shape, dim: 32 }, reference: referenceSet(9, 24, 4, 32) }

const expectRelative = (actual: number, expected: number, label: string, tolerance: number) => {
  if (!(Math.abs(actual - expected) <= tolerance * Math.abs(expected) + 1e-15)) {
    expect.fail(`${label}: ${actual} vs ${expected} (relative ${Math.abs(actual - expected) / Math.abs(expected)})`)
  }
}

/** Every estimate the space gives, by id. */
const estimatesOf = (space: EstimateSpace, weights: Float64Array) => {
  const values = space.estimates(weights)
  return Object.fromEntries(space.definitions.map((d, i) => [d.id, values[i]]))
}

/** The metrics the evaluation reports, computed from scratch by the metric functions. */
const exactMetrics = (generated: ReadonlyArray<GeneratedImage>, reference = referenceSet(9, 24, 4)) =>
  Effect.gen(function*() {
    const measured = yield* measure(generated, reference)
    const dim = reference.embeddings.dim
    const embeddings = { name: "generated", count: generated.length, dim, data: Float32Array.from(generated.flatMap((g) => [...g.embedding!])) }
    const real = { name: "reference", ...reference.embeddings }
    const mean = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0) / values.length
    const clipOf = (include: (g: GeneratedImage) => boolean) => mean(generated.filter(include).map((g) => g.clip!))
    return {
      measured,
      values: {
        ...Object.fromEntries(Object.entries(measured.comparison.amplitude).map(([k, v]) => [`amplitude.${k}`, v])),
        "texture.canberra": measured.comparison.glcm.canberra,
        ...Object.fromEntries(Object.entries(measured.generatedStatistics).map(([k, v]) => [`statistics.${k}`, v])),
        ...Object.fromEntries(GLCM_PROPERTIES.map((p) => [`texture.${p}`, mean(measured.comparison.glcm.a[p].flat())])),
        "alignment.seen": clipOf((g) => g.split === "seen"),
        "alignment.unseen": clipOf((g) => g.split === "unseen"),
        ...Object.fromEntries(shape.prompts.map((_, i) => [`alignment.prompt.${i}`, clipOf((g) => g.promptIndex === i)])),
        "embedding.fid_clip": yield* frechetDistance(embeddings, real),
        "embedding.kid_clip": yield* kernelDistance(embeddings, real),
        "embedding.cmmd": yield* cmmd(embeddings, real)
      } as Record<string, number>
    }
  })

describe("the resampling space of an evaluation", () => {
  it("with unit weights gives every metric the evaluation reports (exactly for the pooled and averaged ones)", async () => {
    const generated = await Effect.runPromise(generatedImages(shape, 1))
    const { measured, values } = await Effect.runPromise(exactMetrics(generated))
    const space = new EstimateSpace(measured.evidence, measured.evidence.images)
    const estimates = estimatesOf(space, space.unitWeights())
    expect(Object.keys(estimates).sort()).toEqual(Object.keys(values).sort())
    for (const [id, value] of Object.entries(values)) {
      // FID's trace term goes through another factorisation; everything else sums in the same order.
      expectRelative(estimates[id]!, value, id, id.startsWith("embedding.") ? 1e-9 : 1e-14)
    }
  })

  it("with integer weights gives the metrics of the set in which each image appears that many times", async () => {
    const generated = await Effect.runPromise(generatedImages(shape, 2))
    const weights = Float64Array.from(generated, (_, i) => [0, 1, 2, 3][(i * 7) % 4]!)
    const repeated = generated.flatMap((g, i) => Array.from({ length: weights[i]! }, () => g))
    const { values } = await Effect.runPromise(exactMetrics(repeated))
    const { measured } = await Effect.runPromise(exactMetrics(generated))
    const space = new EstimateSpace(measured.evidence, measured.evidence.images)
    const estimates = estimatesOf(space, weights)
    for (const [id, value] of Object.entries(values)) expectRelative(estimates[id]!, value, id, id.startsWith("embedding.") ? 1e-9 : 1e-12)
  })

  it("takes FID_CLIP's trace term in the images' space when there are fewer images than dimensions", async () => {
    const generated = await Effect.runPromise(generatedImages(wide.shape, 4))
    const weights = Float64Array.from(generated, (_, i) => [2, 0, 1][i % 3]!)
    const repeated = generated.flatMap((g, i) => Array.from({ length: weights[i]! }, () => g))
    const { measured, values } = await Effect.runPromise(exactMetrics(generated, wide.reference))
    const space = new EstimateSpace(measured.evidence, measured.evidence.images)
    // frechetDistance takes square roots of the ~20 rounding-level eigenvalues of the singular Σx
    // (each √ε ≈ 1e-8); the images' space has none, so the two agree to that, not to 1e-9.
    expectRelative(estimatesOf(space, space.unitWeights())["embedding.fid_clip"]!, values["embedding.fid_clip"]!, "unit weights", 1e-7)
    const resampled = await Effect.runPromise(exactMetrics(repeated, wide.reference))
    for (const id of ["embedding.fid_clip", "embedding.kid_clip", "embedding.cmmd"]) {
      expectRelative(estimatesOf(space, weights)[id]!, resampled.values[id]!, id, id === "embedding.fid_clip" ? 1e-7 : 1e-9)
    }
  })

  it("keeps quantile atoms of large images: resampled Wasserstein-1 and KS stay within a bin of the exact ones", async () => {
    const large = { ...shape, side: 80, seeds: [0, 1] }
    const generated = await Effect.runPromise(generatedImages(large, 3))
    const { measured, values } = await Effect.runPromise(exactMetrics(generated))
    expect(measured.evidence.images[0]!.atoms.length).toBe(4096)
    expect(measured.evidence.images[0]!.pixels).toBe(6400)
    const space = new EstimateSpace(measured.evidence, measured.evidence.images)
    const estimates = estimatesOf(space, space.unitWeights())
    expect(Math.abs(estimates["amplitude.wasserstein"]! - values["amplitude.wasserstein"]!)).toBeLessThan(1 / 4096)
    expect(Math.abs(estimates["amplitude.ks"]! - values["amplitude.ks"]!)).toBeLessThan(2 / 4096)
    // Histogram distances use exact counts whatever the atoms.
    expect(estimates["amplitude.js"]).toBe(values["amplitude.js"])
  })
})
