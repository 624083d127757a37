import { Effect } from "effect"
import { join } from "node:path"
import type { ResolvedControlNet } from "../../../framework/declaration/adaptation.ts"
import { readPreparedCondition, readPreparedIndex } from "../../../framework/steps/prepared-dataset.ts"
import type { AdaptedPipeline } from "../training/adapted-pipeline.ts"
import { type ConditionScenes, GenerationError } from "./generate-samples.ts"

/**
 * The scenes a conditioned experiment samples: the prepare-data folder of generate.conditions (each
 * scene's caption and conditioning image) with the pipeline's ControlNet at the declared scale and
 * guess mode. Without a ControlNet (a baseline made from the UNet has none) or without the scenes,
 * generation is refused rather than run unconditioned.
 */
export const conditionScenes = (view: AdaptedPipeline, declared: ResolvedControlNet, conditionsDir: string | undefined) =>
  Effect.gen(function*() {
    const controlnet = view.controlnet
    if (controlnet === undefined) {
      return yield* new GenerationError({
        field: "conditions",
        reason: "the experiment is conditioned, but there is no trained ControlNet to sample with (a baseline has none); train the experiment"
      })
    }
    if (conditionsDir === undefined) {
      return yield* new GenerationError({ field: "conditions", reason: "the experiment is conditioned, but no prepared scenes were given to sample" })
    }
    const prepared = yield* readPreparedIndex(conditionsDir)
    if (prepared.conditioning === undefined || prepared.samples.length === 0) {
      return yield* new GenerationError({
        field: "conditions",
        reason: `${join(conditionsDir, "index.json")} holds no scene with a conditioning image (${declared.column})`
      })
    }
    const channels = prepared.conditioning.channels
    const scenes = yield* Effect.forEach(prepared.samples, (sample) =>
      readPreparedCondition(conditionsDir, sample).pipe(
        Effect.map((image) => ({
          id: sample.id,
          source: sample.source,
          caption: sample.caption,
          image,
          height: prepared.height,
          width: prepared.width,
          channels
        }))
      ))
    return { controlnet: { ...controlnet, scale: declared.scale, guessMode: declared.guessMode }, scenes } satisfies ConditionScenes
  })
