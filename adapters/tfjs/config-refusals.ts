import type { PlatformError } from "@effect/platform/Error"
import { Effect, Either, Option } from "effect"
import { join } from "node:path"
import { isNotFound } from "../../framework/files/file-errors.ts"
import type { EngineName } from "../../framework/services/engine.ts"
import type { ConfigFolders, ConfigRefusal, SamplerDeclaration } from "../../framework/services/model-architecture.ts"
import { AutoencoderKlConfig, decodeAutoencoderKlConfig } from "./autoencoder-kl.ts"
import { ClipTextConfig, decodeClipTextConfig } from "./clip-text-model.ts"
import { ControlNetConfig, controlNetConfigFromUnet, decodeControlNetConfig, fromUnetObstacles } from "./controlnet.ts"
import { decodeConfig, type ModelConfigError, readJsonFile } from "./model-config.ts"
import { pipelineIndex } from "./pipeline-loader.ts"
import { makeScheduler, schedulerConfigSchemas } from "./sampling/sampler.ts"
import { decodeNoiseSchedule } from "./schedulers/noise-schedule.ts"
import { decodeUnet2DConditionConfig, Unet2DConditionConfig } from "./unet2d-condition.ts"
import { type ConfigClass, schedulerConfigClass, unknownConfigKeys, unknownKeyReason } from "./unknown-config-keys.ts"

/** A config file not there yet (a base still to download) is not checked; one there but unreadable or not JSON is refused. */
const isAbsent = (error: ModelConfigError): boolean => {
  const cause = error.cause as PlatformError | undefined
  return cause !== undefined && typeof cause === "object" && "_tag" in cause && isNotFound(cause)
}

/** The config's JSON (none when the file is not there), or why it cannot be read. */
const presentConfig = (file: string): Effect.Effect<Either.Either<Option.Option<unknown>, string>> =>
  readJsonFile(file).pipe(
    Effect.map(Option.some),
    Effect.catchIf(isAbsent, () => Effect.succeedNone),
    Effect.either,
    Effect.map(Either.mapLeft((error) => error.message))
  )

/**
 * What is wrong with a config: a file no library could read, a value the tfjs engine cannot build (which
 * diffusers may), or a key it does not know (`unknownConfigKeys`), whose text says what to do.
 */
interface Finding {
  readonly text: string
  readonly kind: "unreadable" | "unbuildable" | "unknown key"
}

const unreadable = (text: string): Finding => ({ text, kind: "unreadable" })
const unbuildable = (text: string): Finding => ({ text, kind: "unbuildable" })

/**
 * The fields of the tfjs engine's schema for a config (every key the pinned library class takes: config-keys.test.ts),
 * the class whose keys it follows, and the engine whose plan refuses the others.
 */
interface KnownKeys {
  readonly named: Readonly<Record<string, unknown>>
  readonly className: ConfigClass
  readonly engine: EngineName
}

const unknownKey = (file: string, key: string, known: KnownKeys): Finding => ({
  text: `${file}: ${unknownKeyReason(key, known.className, known.engine)}`,
  kind: "unknown key"
})

/**
 * `decode`'s refusal of a config file (when given) and, with `known`, a finding per key it does not know; or why
 * the file cannot be read. Nothing when it builds or is not there yet.
 */
const refusalOf = (
  file: string,
  decode: ((json: unknown, file: string) => Effect.Effect<unknown, { readonly message: string }>) | undefined,
  known?: KnownKeys
): Effect.Effect<ReadonlyArray<Finding>> =>
  Effect.flatMap(
    presentConfig(file),
    Either.match({
      onLeft: (why) => Effect.succeed([unreadable(why)]),
      onRight: Option.match({
        onNone: () => Effect.succeed([]),
        onSome: (json) =>
          (decode === undefined ? Effect.succeed<ReadonlyArray<Finding>>([]) : decode(json, file).pipe(
            Effect.as<ReadonlyArray<Finding>>([]),
            Effect.catchAll((error) => Effect.succeed([unbuildable(error.message)]))
          )).pipe(
            Effect.map((refused) => [
              ...refused,
              ...(known === undefined ? [] : unknownConfigKeys(json, known.named, known.className).map((key) => unknownKey(file, key, known)))
            ])
          )
      })
    })
  )

/**
 * What `engine` refuses in a pipeline folder's configs. Either engine refuses the keys the pinned libraries would
 * ignore (the torch engine hands the configs to them); the tfjs engine also what its decoders — the ones its
 * loaders, trainer and samplers use, so the two cannot disagree — cannot build. A folder whose index the tfjs
 * engine cannot read is the tfjs engine's refusal; the torch engine's loader says its own.
 */
const pipelineRefusals = (folder: string, sampler: SamplerDeclaration, engine: EngineName): Effect.Effect<ReadonlyArray<Finding>> =>
  Effect.gen(function*() {
    const tfjs = engine === "tfjs"
    const indexFile = join(folder, "model_index.json")
    const indexConfig = yield* presentConfig(indexFile)
    if (Either.isLeft(indexConfig)) return tfjs ? [unreadable(indexConfig.left)] : []
    if (Option.isNone(indexConfig.right)) return []
    const index = yield* Effect.either(pipelineIndex(folder))
    if (index._tag === "Left") return tfjs ? [unbuildable(index.left.message)] : []
    const decoded = <A>(decode: A) => (tfjs ? decode : undefined)
    const scheduler = join(folder, "scheduler", "scheduler_config.json")
    const checks = [
      refusalOf(join(folder, "unet", "config.json"), decoded(decodeUnet2DConditionConfig), {
        named: Unet2DConditionConfig.fields,
        className: "UNet2DConditionModel",
        engine
      }),
      refusalOf(join(folder, "vae", "config.json"), decoded(decodeAutoencoderKlConfig), {
        named: AutoencoderKlConfig.fields,
        className: "AutoencoderKL",
        engine
      }),
      ...index.right.textEncoders.map(({ name, withProjection }) =>
        refusalOf(join(folder, name, "config.json"), decoded((json: unknown, file: string) => decodeClipTextConfig(json, file, withProjection)), {
          named: ClipTextConfig.fields,
          className: "CLIPTextConfig",
          engine
        })
      ),
      ...(tfjs ? [refusalOf(scheduler, decodeNoiseSchedule)] : []),
      // The sampler's class decides which keys of the scheduler config are read (the noise schedule reads a few of them).
      refusalOf(scheduler, decoded((json: unknown, file: string) => makeScheduler(sampler, json, file)), {
        named: schedulerConfigSchemas[sampler.sampler].fields,
        className: schedulerConfigClass(sampler.sampler),
        engine
      })
    ]
    const refusals = yield* Effect.all(checks)
    // The noise schedule and the sampler read some of the same keys: one line per distinct refusal.
    const findings = refusals.flat()
    return findings.filter((finding, at) => findings.findIndex((f) => f.text === finding.text) === at)
  })

/**
 * A ControlNet folder's refusals under conditioning.init: its unknown keys on either engine, on tfjs also what it
 * cannot build or read.
 */
const controlNetRefusals = (folder: string | undefined, engine: EngineName): Effect.Effect<ReadonlyArray<ConfigRefusal>> =>
  folder === undefined ? Effect.succeed([]) : Effect.map(
    refusalOf(join(folder, "config.json"), engine === "tfjs" ? decodeControlNetConfig : undefined, {
      named: ControlNetConfig.fields,
      className: "ControlNetModel",
      engine
    }),
    (findings) =>
      findings.filter((f) => engine === "tfjs" || f.kind === "unknown key").map((f): ConfigRefusal => ({
        field: "conditioning.init",
        reason: f.kind === "unbuildable" ? `${f.text}: the tfjs engine cannot build this ControlNet` : f.text
      }))
  )

const tfjsRefusals = (folders: ConfigFolders, sampler: SamplerDeclaration): Effect.Effect<ReadonlyArray<ConfigRefusal>> =>
  Effect.gen(function*() {
    const hint = "the tfjs engine cannot build this; run it with --engine torch (diffusers reads it), or change the config"
    // A value the torch engine refuses too gets no hint towards it: its own refusal says why.
    const vaeFile = join(folders.base, "vae", "config.json")
    const refusedOnTorch = Either.getOrElse(yield* torchUnappliedKeys(vaeFile), () => [])
    const advice = (text: string) => {
      const key = refusedOnTorch.find((k) => text.startsWith(`${vaeFile}: ${k}:`))
      return key === undefined ? hint : `neither engine applies it (${torchUnappliedVaeKeys[key]}); use a VAE without it`
    }
    const base = (yield* pipelineRefusals(folders.base, sampler, "tfjs")).map((f): ConfigRefusal => ({
      field: "base",
      reason: f.kind === "unbuildable" ? `${f.text}: ${advice(f.text)}` : f.text
    }))
    return [
      ...base,
      ...(folders.controlNetFromUnet === true ? yield* fromUnetRefusals("tfjs", folders.base) : []),
      ...(yield* controlNetRefusals(folders.controlNet, "tfjs"))
    ]
  })

/**
 * When an experiment's ControlNet is made from the base's UNet (conditioning.init "unet"): what of that UNet's
 * config diffusers' ControlNetModel.from_unet cannot copy, which both engines follow (the torch engine calls
 * it); on tfjs, then, what its ControlNet definition cannot build of the config from_unet writes. An
 * unreadable or undecodable UNet config is the base's refusal, not repeated here.
 */
const fromUnetRefusals = (engine: EngineName, base: string): Effect.Effect<ReadonlyArray<ConfigRefusal>> =>
  Effect.gen(function*() {
    const file = join(base, "unet", "config.json")
    const present = yield* presentConfig(file)
    if (Either.isLeft(present) || Option.isNone(present.right)) return []
    const json = present.right.value
    if (typeof json !== "object" || json === null || Array.isArray(json)) return []
    const refusal = (text: string): ConfigRefusal => ({
      field: "conditioning.init",
      reason: `${text}: the ${engine} engine makes conditioning.init "unet" as diffusers' ControlNetModel.from_unet does, which cannot ` +
        "make a ControlNet of this UNet; start from a ControlNet folder (conditioning.init), or use another base"
    })
    const obstacles = fromUnetObstacles(json as Record<string, unknown>)
    if (obstacles.length > 0 || engine === "torch") return obstacles.map((o) => refusal(`${file}: ${o.key}: ${o.reason}`))
    const unbuilt = yield* decodeConfig(Unet2DConditionConfig, json, file).pipe(
      // Any channel count and embedding width decode alike: the prepared images decide them at train time.
      Effect.flatMap((unet) => Effect.flip(controlNetConfigFromUnet(unet, file, { conditioningChannels: 3, conditioningEmbeddingOutChannels: [16] }))),
      Effect.option
    )
    return Option.match(unbuilt, { onNone: () => [], onSome: (error) => [refusal(error.message)] })
  })

/** VAE keys the torch worker's own encode and decode would not honour, and why. */
const torchUnappliedVaeKeys: Readonly<Record<string, string>> = {
  latents_mean: "the torch engine encodes and decodes latents with scaling_factor only (its worker has no per-channel latent standardisation)",
  latents_std: "the torch engine encodes and decodes latents with scaling_factor only (its worker has no per-channel latent standardisation)",
  shift_factor:
    "the torch engine decodes at latents / scaling_factor, as diffusers' SD and SDXL pipelines do, so latents shifted for training would not be shifted back"
}

/** The keys of `torchUnappliedVaeKeys` the VAE config sets (none when it is not there), or why it cannot be read. */
const torchUnappliedKeys = (vaeFile: string): Effect.Effect<Either.Either<ReadonlyArray<string>, string>> =>
  Effect.map(
    presentConfig(vaeFile),
    Either.map((present) => {
      const json = Option.getOrUndefined(present)
      const config = typeof json === "object" && json !== null ? json as Record<string, unknown> : {}
      return Object.keys(torchUnappliedVaeKeys).filter((key) => config[key] != null)
    })
  )

const torchRefusals = (folders: ConfigFolders, sampler: SamplerDeclaration): Effect.Effect<ReadonlyArray<ConfigRefusal>> => {
  const vaeFile = join(folders.base, "vae", "config.json")
  const vae = Effect.map(
    torchUnappliedKeys(vaeFile),
    Either.match({
      onLeft: (unreadable): ReadonlyArray<ConfigRefusal> => [{ field: "base", reason: unreadable }],
      onRight: (keys) =>
        keys.map((key): ConfigRefusal => ({ field: "base", reason: `${vaeFile}: ${key}: ${torchUnappliedVaeKeys[key]}; use a VAE without it` }))
    })
  )
  // An unreadable config is the VAE check's refusal here, or the loader's: the torch engine refuses only unknown keys.
  const unknownKeys = Effect.map(
    pipelineRefusals(folders.base, sampler, "torch"),
    (findings) => findings.filter((f) => f.kind === "unknown key").map((f): ConfigRefusal => ({ field: "base", reason: f.text }))
  )
  const fromUnet = folders.controlNetFromUnet === true ? fromUnetRefusals("torch", folders.base) : Effect.succeed([])
  return Effect.map(Effect.all([unknownKeys, vae, fromUnet, controlNetRefusals(folders.controlNet, "torch")]), (found) => found.flat())
}

/** The config values `engine` would not honour in an experiment's folders (ModelArchitecture.configRefusals). */
export const configRefusals = (engine: EngineName, folders: ConfigFolders, sampler: SamplerDeclaration): Effect.Effect<ReadonlyArray<ConfigRefusal>> =>
  engine === "tfjs" ? tfjsRefusals(folders, sampler) : torchRefusals(folders, sampler)
