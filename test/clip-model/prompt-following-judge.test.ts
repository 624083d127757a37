import { NodeContext } from "@effect/platform-node"
import { Chunk, Effect, Layer, Schema, Stream } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ClipScorersLive } from "../../adapters/clip-scorer/clip-scorers-live.ts"
import { syntheticSamples } from "../../adapters/data/synthetic/synthetic-samples.ts"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { synthetic } from "../../framework/declaration/dataset.ts"
import { Evaluation } from "../../framework/declaration/evaluation.ts"
import { distinctPrompts, measurePromptFollowing } from "../../framework/metrics/prompt-following.ts"
import type { Raster } from "../../framework/services/image-io.ts"
import { ClipScorers } from "../../framework/services/scorer.ts"
import { evaluateImages } from "../../framework/steps/evaluate-images.ts"
import type { EvaluationResult } from "../../framework/steps/evaluation-result.ts"

/**
 * `alignment.promptFollowing`: a second CLIP judges the gap and retrieval, the declared CLIP keeps the
 * absolute alignment. The evaluate step's own code (evaluateImages) on real synthetic scenes, scored
 * by two real CLIPs — the demo's SAR CLIP and the tiny transformers CLIP of the fixtures, which see
 * the same images differently — once without a judge and once with one: the absolute scores are the
 * SAR CLIP's in both, the prompt following is the judge's (as measurePromptFollowing gives it on the
 * judge's own embeddings) only when it is declared, and the result names the judge.
 */

const SAR_CLIP = "experiments/demo/sar-clip"
const JUDGE = "test/fixtures/clip-model/tiny-clip"
const layer = Layer.mergeAll(NodeContext.layer, ImageIOLive, ClipScorersLive)
const scratch = mkdtempSync(join(tmpdir(), "sardine-judge-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

describe("a prompt-following judge beside the alignment CLIP", () => {
  let scenes: ReadonlyArray<{ readonly caption: string; readonly raster: Raster }>
  beforeAll(async () => {
    await Effect.runPromise(selectBackend("wasm"))
    const items = Chunk.toReadonlyArray(await Effect.runPromise(Stream.runCollect(syntheticSamples(synthetic({ n: 16, size: 32, seed: 41 })))))
    // One scene per caption: each prompt has one image, whose reading is its own retrieval.
    const byCaption = new Map<string, Raster>()
    for (const item of items) {
      if (item._tag !== "Sample" || byCaption.has(item.sample.caption)) continue
      const { height, pixels, width } = item.sample
      byCaption.set(item.sample.caption, { width, height, channels: 1, data: pixels.map((v) => Math.min(1, Math.max(0, (v + 1) / 2))) })
    }
    scenes = [...byCaption].map(([caption, raster]) => ({ caption, raster }))
  })

  const evaluated = (alignment: object, name: string) =>
    Effect.runPromise(
      evaluateImages({
        experiments: [name],
        generated: scenes.map((scene, i) => ({
          read: Effect.succeed(scene.raster),
          name: `scene ${i}`,
          promptIndex: i,
          prompt: scene.caption,
          declaredPrompt: scene.caption,
          split: "seen" as const,
          seed: 0
        })),
        reference: scenes.map((scene) => ({
          read: Effect.succeed({ name: scene.caption, width: 32, height: 32, data: scene.raster.data }),
          caption: scene.caption
        })),
        referenceKey: "reference",
        options: Schema.decodeUnknownSync(Evaluation)({
          reference: synthetic({ n: 12, size: 32, seed: 41 }),
          alignment: { ...alignment, embeddingDistances: false },
          uncertainty: { resamples: 100 }
        }),
        resolveClip: (declared) => declared,
        lineage: { generate: "generate", reference: "reference" },
        workDir: join(scratch, name),
        progress: () => Effect.void,
        log: () => Effect.void
      }).pipe(Effect.provide(layer))
    )

  /** What measurePromptFollowing gives on one CLIP's own embeddings of the scenes and their captions. */
  const followingBy = (clip: string) =>
    Effect.runPromise(
      Effect.scoped(Effect.gen(function*() {
        const scorer = yield* (yield* ClipScorers).load(clip)
        const distinct = distinctPrompts(scenes.map((s) => s.caption))
        const images = yield* scorer.embedImages(scenes.map((s) => s.raster))
        const texts = yield* scorer.embedTexts(distinct.prompts)
        return yield* measurePromptFollowing(images, texts, distinct.own, 3)
      })).pipe(Effect.provide(ClipScorersLive))
    )

  /** The result as evaluation.json holds it. */
  const asWritten = (result: EvaluationResult) => JSON.parse(JSON.stringify(result)) as EvaluationResult

  it("takes the gap and retrieval from the judge, the absolute alignment from the CLIP, and names both", async () => {
    const plain = asWritten(await evaluated({ clip: SAR_CLIP }, "plain"))
    const judged = asWritten(await evaluated({ clip: SAR_CLIP, promptFollowing: { clip: JUDGE } }, "judged"))
    const bySar = await followingBy(SAR_CLIP)
    const byJudge = await followingBy(JUDGE)
    if (bySar.following._tag !== "Measured" || byJudge.following._tag !== "Measured") throw new Error("prompt following not measured")
    expect(new Set(scenes.map((s) => s.caption)).size).toBeGreaterThan(3)

    expect(plain.alignment!.clip).toBe(SAR_CLIP)
    expect(plain.alignment!.judge).toBeUndefined()
    expect(judged.alignment!).toMatchObject({ clip: SAR_CLIP, judge: JUDGE })
    // The absolute alignment (own prompt's score) is the SAR CLIP's, judge or not.
    expect(judged.alignment!.prompts).toEqual(plain.alignment!.prompts)
    const gapOf = (images: ReadonlyArray<{ readonly gap: number }>) => images.reduce((a, f) => a + f.gap, 0) / images.length
    expect(plain.estimates["prompt_following.gap"]!.value).toBeCloseTo(gapOf(bySar.following.images), 4)
    expect(judged.estimates["prompt_following.gap"]!.value).toBeCloseTo(gapOf(byJudge.following.images), 4)
    expect(Math.abs(gapOf(byJudge.following.images) - gapOf(bySar.following.images))).toBeGreaterThan(0.5)
    // The per-prompt readings' retrieval is the judge's too.
    const firstOf = (scores: Float64Array, prompts: number, i: number) => {
      const row = Array.from(scores.subarray(i * prompts, (i + 1) * prompts))
      return row.indexOf(Math.max(...row))
    }
    const prompts = byJudge.following.setting.prompts
    const judgeFirsts = scenes.map((_, i) => firstOf(byJudge.scores, prompts, i))
    expect(judged.promptReadings.map((r) => r.retrieved![0]!.promptIndex)).toEqual(judgeFirsts)
  }, 300_000)
})
