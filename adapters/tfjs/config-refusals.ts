import { Effect, Option } from "effect"
import { join } from "node:path"
import type { SamplerDeclaration } from "../../framework/services/model-architecture.ts"
import { decodeAutoencoderKlConfig } from "./autoencoder-kl.ts"
import { decodeClipTextConfig } from "./clip-text-model.ts"
import { readJsonFile } from "./model-config.ts"
import { pipelineIndex } from "./pipeline-loader.ts"
import { makeScheduler } from "./sampling/sampler.ts"
import { decodeNoiseSchedule } from "./schedulers/noise-schedule.ts"
import { decodeUnet2DConditionConfig } from "./unet2d-condition.ts"

/** `decode`'s refusal of a config file, or nothing when it builds or when the file cannot be read yet. */
const refusalOf = (file: string, decode: (json: unknown, file: string) => Effect.Effect<unknown, { readonly message: string }>) =>
  readJsonFile(file).pipe(
    Effect.option,
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeed(Option.none<string>()),
      onSome: (json) => decode(json, file).pipe(Effect.as(Option.none<string>()), Effect.catchAll((error) => Effect.succeed(Option.some(error.message))))
    }))
  )

/**
 * What the tfjs engine refuses in a pipeline folder's configs, checked with the same decoders its
 * loaders, trainer and samplers use (so the two cannot disagree).
 */
export const tfjsConfigRefusals = (folder: string, sampler: SamplerDeclaration): Effect.Effect<ReadonlyArray<string>> =>
  Effect.gen(function*() {
    const indexFile = join(folder, "model_index.json")
    if (Option.isNone(yield* Effect.option(readJsonFile(indexFile)))) return []
    const index = yield* Effect.either(pipelineIndex(folder))
    if (index._tag === "Left") return [index.left.message]
    const scheduler = join(folder, "scheduler", "scheduler_config.json")
    const checks = [
      refusalOf(join(folder, "unet", "config.json"), decodeUnet2DConditionConfig),
      refusalOf(join(folder, "vae", "config.json"), decodeAutoencoderKlConfig),
      ...index.right.textEncoders.map(({ name, withProjection }) =>
        refusalOf(join(folder, name, "config.json"), (json, file) => decodeClipTextConfig(json, file, withProjection))
      ),
      refusalOf(scheduler, decodeNoiseSchedule),
      refusalOf(scheduler, (json, file) => makeScheduler(sampler, json, file))
    ]
    const refusals = yield* Effect.all(checks)
    // The noise schedule and the sampler read some of the same keys: one line per distinct refusal.
    return [...new Set(refusals.flatMap(Option.toArray))]
  })
