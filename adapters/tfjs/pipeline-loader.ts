import { Effect, Schema } from "effect"
import type { ComponentName } from "../../framework/declaration/adaptation.ts"
import { join } from "node:path"
import { componentWeightFiles } from "../safetensors/component-files.ts"
import type { SafetensorsError } from "../safetensors/safetensors-error.ts"
import type { ClipTokenizer } from "../tokenizer/clip-tokenizer.ts"
import { loadClipTokenizer, type TokenizerError } from "../tokenizer/tokenizer-files.ts"
import { autoencoderKlSpecs, decodeAutoencoderKlConfig, renameLegacyVaeTensor, type AutoencoderKlPlan } from "./autoencoder-kl.ts"
import { type CheckpointMismatchError, type CheckpointNaming, disposeParameters, loadParameters } from "./checkpoint.ts"
import { controlNetSpecs, type ControlNetPlan, decodeControlNetConfig } from "./controlnet.ts"
import { canonicalClipTensorName, clipTextSpecs, decodeClipTextConfig, isIgnoredClipTensor, type ClipTextPlan } from "./clip-text-model.ts"
import type { ParameterMap, ParameterSpec } from "./layers.ts"
import { type ModelConfigError, readJsonFile } from "./model-config.ts"
import { decodeUnet2DConditionConfig, unet2dConditionSpecs, type Unet2DConditionPlan } from "./unet2d-condition.ts"

/** A pipeline folder whose model_index.json does not describe a Stable Diffusion pipeline sardine builds. */
export class PipelineError extends Schema.TaggedError<PipelineError>()("PipelineError", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

export type LoadError = ModelConfigError | SafetensorsError | CheckpointMismatchError | TokenizerError | PipelineError

/** A model: its plan (config + derived shapes), its parameters by state-dict name, and the files they came from. */
export interface LoadedModel<Plan> {
  readonly folder: string
  readonly plan: Plan
  readonly specs: ReadonlyArray<ParameterSpec>
  readonly parameters: ParameterMap
}

export type TextEncoderComponent = Extract<ComponentName, "text_encoder" | "text_encoder_2">

export interface LoadedTextEncoder extends LoadedModel<ClipTextPlan> {
  readonly name: TextEncoderComponent
  readonly tokenizer: ClipTokenizer
}

export interface StableDiffusionPipeline {
  readonly folder: string
  /** "sdxl" when the UNet takes SDXL's text_time conditioning. */
  readonly family: "sd" | "sdxl"
  readonly unet: LoadedModel<Unet2DConditionPlan>
  readonly vae: LoadedModel<AutoencoderKlPlan>
  /** In pipeline order: text_encoder, then text_encoder_2 when present. */
  readonly textEncoders: ReadonlyArray<LoadedTextEncoder>
  readonly scheduler: { readonly className: string; readonly config: Readonly<Record<string, unknown>> }
}

export interface LoadOptions {
  /** Weight variant, as diffusers' `variant=` ("fp16" reads `*.fp16.safetensors`). */
  readonly variant?: string
}

const loadModel = <Plan>(
  folder: string,
  configFile: string,
  decode: (json: unknown, file: string) => Effect.Effect<Plan, ModelConfigError>,
  specsOf: (plan: Plan) => Array<ParameterSpec>,
  naming: CheckpointNaming,
  options: LoadOptions
): Effect.Effect<LoadedModel<Plan>, LoadError> =>
  Effect.gen(function*() {
    const file = join(folder, configFile)
    const plan = yield* decode(yield* readJsonFile(file), file)
    const specs = specsOf(plan)
    const files = yield* componentWeightFiles(folder, options.variant)
    const parameters = yield* loadParameters(folder, specs, files, naming)
    return { folder, plan, specs, parameters }
  })

/** A diffusers `unet/` folder: config.json + diffusion_pytorch_model(.variant).safetensors (or shards). */
export const loadUnet2DCondition = (folder: string, options: LoadOptions = {}) =>
  loadModel(folder, "config.json", decodeUnet2DConditionConfig, unet2dConditionSpecs, {}, options)

/** A diffusers ControlNetModel folder: config.json + diffusion_pytorch_model(.variant).safetensors (or shards). */
export const loadControlNet = (folder: string, options: LoadOptions = {}): Effect.Effect<LoadedModel<ControlNetPlan>, LoadError> =>
  loadModel(folder, "config.json", decodeControlNetConfig, controlNetSpecs, {}, options)

/** A diffusers `vae/` folder (AutoencoderKL). */
export const loadAutoencoderKl = (folder: string, options: LoadOptions = {}) =>
  loadModel(folder, "config.json", decodeAutoencoderKlConfig, autoencoderKlSpecs, { rename: renameLegacyVaeTensor }, options)

/** A transformers `text_encoder/` folder: CLIPTextModel, or CLIPTextModelWithProjection when `withProjection`. */
export const loadClipTextModel = (folder: string, withProjection: boolean, options: LoadOptions = {}) =>
  loadModel(
    folder,
    "config.json",
    (json, file) => decodeClipTextConfig(json, file, withProjection),
    clipTextSpecs,
    { rename: canonicalClipTensorName, ignore: isIgnoredClipTensor },
    options
  )

const TEXT_ENCODER_CLASSES: Record<string, boolean> = { CLIPTextModel: false, CLIPTextModelWithProjection: true }
const TOKENIZER_CLASSES = ["CLIPTokenizer", "CLIPTokenizerFast"]

/** model_index.json entries are `[library, class]`, or `[null, null]` for an absent component. */
const componentClass = (index: Record<string, unknown>, name: string): string | undefined => {
  const entry = index[name]
  return Array.isArray(entry) && typeof entry[1] === "string" ? entry[1] : undefined
}

export const disposePipeline = (pipeline: StableDiffusionPipeline): void => {
  for (const model of [pipeline.unet, pipeline.vae, ...pipeline.textEncoders]) disposeParameters(model.parameters)
}

/** The components of a pipeline folder's model_index.json that sardine builds, checked against the classes it knows. */
export const pipelineIndex = (folder: string) =>
  Effect.gen(function*() {
    const indexFile = join(folder, "model_index.json")
    const json = yield* readJsonFile(indexFile)
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      return yield* new PipelineError({ file: indexFile, reason: "is not a JSON object" })
    }
    const index = json as Record<string, unknown>
    const requireComponent = (name: string, classes: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const cls = componentClass(index, name)
        if (cls === undefined || !classes.includes(cls)) {
          return yield* new PipelineError({
            file: indexFile,
            reason: `component "${name}" is ${JSON.stringify(index[name] ?? null)}; sardine needs one of ${classes.join(", ")}`
          })
        }
        return cls
      })
    yield* requireComponent("unet", ["UNet2DConditionModel"])
    yield* requireComponent("vae", ["AutoencoderKL"])
    const names = (["text_encoder", "text_encoder_2"] as const).filter((name) => componentClass(index, name) !== undefined)
    if (names.length === 0) {
      return yield* new PipelineError({ file: indexFile, reason: "names no text_encoder or text_encoder_2" })
    }
    const textEncoders: Array<{ readonly name: TextEncoderComponent; readonly withProjection: boolean }> = []
    for (const name of names) {
      const cls = yield* requireComponent(name, Object.keys(TEXT_ENCODER_CLASSES))
      yield* requireComponent(name.replace("text_encoder", "tokenizer"), TOKENIZER_CLASSES)
      textEncoders.push({ name, withProjection: TEXT_ENCODER_CLASSES[cls] === true })
    }
    const schedulerClass = componentClass(index, "scheduler")
    if (schedulerClass === undefined) return yield* new PipelineError({ file: indexFile, reason: "names no scheduler" })
    return { textEncoders, schedulerClass }
  })

/**
 * The parameters of every component of a pipeline folder (or an architecture folder of configs without
 * weights), from the configs alone: what `full({ only })` and LoRA targets select from.
 */
export const readPipelineArchitecture = (folder: string): Effect.Effect<ReadonlyMap<ComponentName, ReadonlyArray<ParameterSpec>>, LoadError> =>
  Effect.gen(function*() {
    const { textEncoders } = yield* pipelineIndex(folder)
    const specs = <Plan>(
      component: string,
      decode: (json: unknown, file: string) => Effect.Effect<Plan, ModelConfigError>,
      of: (plan: Plan) => Array<ParameterSpec>
    ) =>
      Effect.gen(function*() {
        const file = join(folder, component, "config.json")
        return of(yield* decode(yield* readJsonFile(file), file))
      })
    const out = new Map<ComponentName, ReadonlyArray<ParameterSpec>>([
      ["unet", yield* specs("unet", decodeUnet2DConditionConfig, unet2dConditionSpecs)],
      ["vae", yield* specs("vae", decodeAutoencoderKlConfig, autoencoderKlSpecs)]
    ])
    for (const { name, withProjection } of textEncoders) {
      out.set(name, yield* specs(name, (json, file) => decodeClipTextConfig(json, file, withProjection), clipTextSpecs))
    }
    return out
  })

/**
 * Loads a diffusers Stable Diffusion 1.x / 2.x or SDXL pipeline folder: model_index.json, each
 * component's config, its weights (checked by name and shape, converted to tfjs layout) and tokenizers.
 * Components sardine does not use (safety checker, feature extractor, image encoder) are skipped.
 */
export const loadPipeline = (folder: string, options: LoadOptions = {}): Effect.Effect<StableDiffusionPipeline, LoadError> =>
  Effect.gen(function*() {
    const { schedulerClass, textEncoders: encoders } = yield* pipelineIndex(folder)
    const scheduler = yield* readJsonFile(join(folder, "scheduler", "scheduler_config.json"))

    const textEncoders: Array<LoadedTextEncoder> = []
    const loaded: Array<ParameterMap> = []
    const track = <M extends { readonly parameters: ParameterMap }>(model: M) => {
      loaded.push(model.parameters)
      return model
    }
    return yield* Effect.gen(function*() {
      const unet = track(yield* loadUnet2DCondition(join(folder, "unet"), options))
      const vae = track(yield* loadAutoencoderKl(join(folder, "vae"), options))
      for (const { name, withProjection } of encoders) {
        const model = track(yield* loadClipTextModel(join(folder, name), withProjection, options))
        const tokenizer = yield* loadClipTokenizer(join(folder, name.replace("text_encoder", "tokenizer")))
        textEncoders.push({ ...model, name, tokenizer })
      }
      return {
        folder,
        family: unet.plan.config.addition_embed_type === "text_time" ? "sdxl" as const : "sd" as const,
        unet,
        vae,
        textEncoders,
        scheduler: { className: schedulerClass, config: scheduler as Record<string, unknown> }
      }
    }).pipe(Effect.onError(() => Effect.sync(() => loaded.forEach(disposeParameters))))
  })
