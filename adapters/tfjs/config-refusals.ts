import { Effect, Option } from "effect"
import { join } from "node:path"
import type { EngineName } from "../../framework/services/engine.ts"
import type { ConfigFolders, ConfigRefusal, SamplerDeclaration } from "../../framework/services/model-architecture.ts"
import { decodeAutoencoderKlConfig } from "./autoencoder-kl.ts"
import { decodeClipTextConfig } from "./clip-text-model.ts"
import { decodeControlNetConfig } from "./controlnet.ts"
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
const tfjsPipelineRefusals = (folder: string, sampler: SamplerDeclaration): Effect.Effect<ReadonlyArray<string>> =>
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

const tfjsRefusals = (folders: ConfigFolders, sampler: SamplerDeclaration): Effect.Effect<ReadonlyArray<ConfigRefusal>> =>
  Effect.gen(function*() {
    const hint = "the tfjs engine cannot build this; run it with --engine torch (diffusers reads it), or change the config"
    const base = (yield* tfjsPipelineRefusals(folders.base, sampler)).map((r): ConfigRefusal => ({ field: "base", reason: `${r}: ${hint}` }))
    const controlNet = folders.controlNet === undefined ? Option.none() : yield* refusalOf(join(folders.controlNet, "config.json"), decodeControlNetConfig)
    return [
      ...base,
      ...Option.toArray(controlNet).map((r): ConfigRefusal => ({ field: "conditioning.init", reason: `${r}: the tfjs engine cannot build this ControlNet` }))
    ]
  })

/** VAE keys the torch worker's own encode and decode would not honour, and why. */
const torchUnappliedVaeKeys: Readonly<Record<string, string>> = {
  latents_mean: "the torch engine encodes and decodes latents with scaling_factor only (per-channel latent standardisation is not implemented)",
  latents_std: "the torch engine encodes and decodes latents with scaling_factor only (per-channel latent standardisation is not implemented)",
  shift_factor:
    "the torch engine decodes at latents / scaling_factor, as diffusers' SD and SDXL pipelines do, so latents shifted for training would not be shifted back"
}

const torchRefusals = (folders: ConfigFolders): Effect.Effect<ReadonlyArray<ConfigRefusal>> =>
  readJsonFile(join(folders.base, "vae", "config.json")).pipe(
    Effect.option,
    Effect.map(Option.match({
      onNone: () => [],
      onSome: (json) => {
        const config = typeof json === "object" && json !== null ? json as Record<string, unknown> : {}
        return Object.entries(torchUnappliedVaeKeys).filter(([key]) => config[key] != null).map(([key, why]): ConfigRefusal => ({
          field: "base",
          reason: `${join(folders.base, "vae", "config.json")}: ${key}: ${why}; use a VAE without it`
        }))
      }
    }))
  )

/** The config values `engine` would not honour in an experiment's folders (ModelArchitecture.configRefusals). */
export const configRefusals = (engine: EngineName, folders: ConfigFolders, sampler: SamplerDeclaration): Effect.Effect<ReadonlyArray<ConfigRefusal>> =>
  engine === "tfjs" ? tfjsRefusals(folders, sampler) : torchRefusals(folders)
