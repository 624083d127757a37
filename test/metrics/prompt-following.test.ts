/**
 * Prompt following (framework/metrics/prompt-following.ts): per-image gap, rank and top-k hits
 * against numpy's (tools/make_prompt_following_goldens.py, ties included), undefined below two
 * prompts, and its estimates in the evaluation's resampling space and evidence file.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import type { Embeddings } from "../../framework/metrics/embedding-distances.ts"
import { promptFollowingTotals } from "../../framework/metrics/metric-catalog.ts"
import { chanceLevels, distinctPrompts, measurePromptFollowing, retrievalOf } from "../../framework/metrics/prompt-following.ts"
import { EstimateSpace } from "../../framework/metrics/resampled-estimates.ts"
import { compareStrategies } from "../../framework/metrics/strategy-comparison.ts"
import { decodeEvidence, encodeEvidence } from "../../framework/steps/evaluation-result.ts"
import { generatedImages, measure, referenceSet } from "./evidence-fixture.ts"
import { expectGolden, float32s, readGolden } from "./golden.ts"

const golden = readGolden("prompt-following.json")
const embeddings = (name: string, data: Float32Array): Embeddings => ({ name, count: data.length / golden.dim, dim: golden.dim, data })
const images = embeddings("images", float32s(golden.images))
const prompts = embeddings("prompts", float32s(golden.prompts))

describe("prompt following against numpy", () => {
  for (const { clippedK, images: expected, k } of golden.cases) {
    it(`gap, rank, top-1 and top-${k} (clipped to ${clippedK}) per image, ties broken in expectation`, async () => {
      const { following, scores } = await Effect.runPromise(measurePromptFollowing(images, prompts, golden.own, k))
      golden.scores.forEach((row: Array<number>, i: number) => row.forEach((s, p) => expectGolden(scores[i * prompts.count + p]!, s, `score[${i}][${p}]`)))
      if (following._tag !== "Measured") return expect.fail(following.reason)
      expect(following.setting).toEqual({ prompts: 5, k: clippedK })
      expect(following.images).toHaveLength(expected.length)
      following.images.forEach((actual, i) => {
        const e = expected[i] as { gap: number; rank: number; top1: number; topk: number }
        expectGolden(actual.gap, e.gap, `gap[${i}]`)
        expect(actual.rank, `rank[${i}]`).toBe(e.rank)
        expect(actual.top1, `top1[${i}]`).toBe(e.top1)
        expect(actual.topk, `topk[${i}]`).toBe(e.topk)
      })
      // The fixture holds ties (prompt 4 repeats prompt 1): some images sit between hit and miss.
      expect(following.images.some((f) => f.top1 === 0.5)).toBe(true)
    })
  }

  it("an image that scores every prompt alike retrieves at chance, not at 0 or 1", () => {
    expect(retrievalOf(20, [20, 20, 20], 1)).toEqual({ rank: 2.5, top1: 0.25, topk: 0.25 })
    expect(retrievalOf(20, [20, 20, 20], 3).topk).toBe(chanceLevels({ prompts: 4, k: 3 }).topk)
  })

  it("is undefined, with the reason, for fewer than two distinct prompts", async () => {
    const one = distinctPrompts(["SAR image of a town", "SAR image of a town"])
    expect(one).toEqual({ prompts: ["SAR image of a town"], own: [0, 0] })
    const single = embeddings("prompts", float32s(golden.prompts).slice(0, golden.dim))
    const { following } = await Effect.runPromise(
      measurePromptFollowing({ ...images, count: 2, data: images.data.slice(0, 2 * golden.dim) }, single, one.own, 3)
    )
    expect(following).toEqual({ _tag: "Absent", reason: expect.stringContaining("1 distinct prompt;") })
    // An own prompt that is not among the prompts is refused, naming the image.
    const refused = await Effect.runPromise(
      Effect.flip(measurePromptFollowing(images, prompts, golden.own.map((p: number, i: number) => (i === 2 ? 5 : p)), 3))
    )
    expect(refused.message).toContain("image 2's own prompt 5 is not one of the 5 prompts")
  })
})

describe("prompt following in the evaluation's estimates", () => {
  it("averages the images' values per split and over all prompts, under any weights, survives evidence.json, and is compared only alike", async () => {
    const shape = {
      prompts: [{ split: "seen" as const, looks: 1, clip: 30 }, { split: "unseen" as const, looks: 2, clip: 25 }, {
        split: "unseen" as const,
        looks: 3,
        clip: 20
      }],
      seeds: [0, 1, 2],
      side: 16
    }
    const generated = (await Effect.runPromise(generatedImages(shape, 3))).map((g, i) => ({
      ...g,
      following: { gap: i - 4, rank: 1 + (i % 3), top1: i % 3 === 0 ? 1 : 0, topk: i % 3 === 2 ? 0 : 1 }
    }))
    const measured = await Effect.runPromise(measure(generated, referenceSet(4, 16, 4)))
    const evidence = decodeEvidence(JSON.parse(JSON.stringify(encodeEvidence({ ...measured.evidence, retrieval: { prompts: 3, k: 2 } }))))
    expect(evidence.retrieval).toEqual({ prompts: 3, k: 2 })
    const space = new EstimateSpace(evidence, evidence.images)
    const weights = Float64Array.from(generated, (_, i) => (i * 5) % 3)
    const values = space.estimates(weights)
    const estimate = (id: string) => values[space.definitions.findIndex((d) => d.id === id)]
    const mean = (split: string, value: "gap" | "top1" | "topk") => {
      let sum = 0
      let weight = 0
      generated.forEach((g, i) => {
        const w = weights[i]!
        if (split === "all" || g.split === split) {
          sum += w * g.following[value]
          weight += w
        }
      })
      return sum / weight
    }
    for (const value of ["gap", "top1", "topk"] as const) {
      expect(estimate(`prompt_following.${value}.seen`), `${value} seen`).toBeCloseTo(mean("seen", value), 12)
      expect(estimate(`prompt_following.${value}.unseen`), `${value} unseen`).toBeCloseTo(mean("unseen", value), 12)
      expect(estimate(promptFollowingTotals[value].id), `${value}`).toBeCloseTo(mean("all", value), 12)
    }
    // Comparisons test prompt following only between evaluations that measured it alike (same P and k).
    const side = (name: string, retrieval: { prompts: number; k: number }) => ({
      name,
      replicates: [{ estimates: {}, evidence: { ...evidence, retrieval } }]
    })
    const settings = { level: 0.95, resamples: 100, seed: 0 }
    const comparedIds = async (k: number) => {
      const comparison = await Effect.runPromise(compareStrategies(side("a", { prompts: 3, k: 2 }), side("b", { prompts: 3, k }), settings, false))
      if (!("definitions" in comparison)) return expect.fail(comparison.reason)
      return comparison.definitions.map((d) => d.id).filter((id) => id.startsWith("prompt_following."))
    }
    expect(await comparedIds(2)).toHaveLength(9)
    expect(await comparedIds(3)).toEqual([])
    // Without per-image prompt following, the evaluation has no such estimate (absent, never 0).
    const plain = new EstimateSpace(measured.evidence, measured.evidence.images.map(({ following: _, ...image }) => image))
    expect(plain.definitions.some((d) => d.id.startsWith("prompt_following."))).toBe(false)
  })
})
