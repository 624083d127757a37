import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { join } from "node:path"
import { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { openSafetensors } from "../../safetensors/safetensors-reader.ts"
import { writeSafetensors, type TensorToWrite } from "../../safetensors/safetensors-writer.ts"
import type { ClipTokenizer } from "../../tokenizer/clip-tokenizer.ts"
import { ADDED_TOKEN_EMBEDDING } from "../clip-text-model.ts"
import type { StableDiffusionPipeline } from "../pipeline-loader.ts"
import type { Adaptation, ComponentName, LoraPart, TokenPart } from "./adapted-pipeline.ts"
import type { EmaState } from "./exponential-moving-average.ts"
import { tokenizerWithToken } from "./learned-token.ts"
import type { LoraWeights } from "./lora.ts"
import { DataFolderError, readIndexFile, writeIndexFile } from "./index-files.ts"
import type { StepRecord } from "./training-checkpoint.ts"
import type { TrainingModel } from "./trainable-model.ts"

/**
 * A finished train step's output, what `generate` and `export` read (next to the last checkpoint):
 *   model.json          the manifest below; written last, so its presence means the model is complete
 *   model.safetensors   trained tensors, float32, tfjs layout:
 *                         `<component>.<parameter>`               every parameter of a fully trained component
 *                         `<component>.<module>.lora_A.weight`    LoRA A ([in, r]; conv [kh, kw, in, r])
 *                         `<component>.<module>.lora_B.weight`    LoRA B ([r, out]; conv [1, 1, r, out])
 *                         `<encoder>.text_model.embeddings.added_token_embedding.weight`  token rows [vectors, hidden]
 *   ema.safetensors     the EMA of the trainable tensors under the same names (when declared)
 *   training.json       the metrics of every step
 * Components are named as the pipeline folders: unet, vae, text_encoder, text_encoder_2.
 */

export const MODEL_MANIFEST = "model.json"
export const MODEL_WEIGHTS = "model.safetensors"
export const EMA_WEIGHTS = "ema.safetensors"
export const TRAINING_HISTORY = "training.json"

const ComponentNameSchema = Schema.Literal("unet", "vae", "text_encoder", "text_encoder_2")

const LoraModuleSchema = Schema.Struct({
  module: Schema.String,
  kind: Schema.Literal("linear", "conv"),
  inFeatures: Schema.Int,
  outFeatures: Schema.Int,
  kernel: Schema.Tuple(Schema.Int, Schema.Int)
})

const PartSchema = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("full") }),
  Schema.Struct({
    kind: Schema.Literal("lora"),
    rank: Schema.Int,
    alpha: Schema.Number,
    dropout: Schema.Number,
    targets: Schema.Array(Schema.String),
    modules: Schema.Array(LoraModuleSchema)
  })
)

export const ModelManifest = Schema.Struct({
  format: Schema.Literal("sardine-trained-model"),
  version: Schema.Literal(1),
  layout: Schema.Literal("tfjs"),
  family: Schema.Literal("sd", "sdxl"),
  steps: Schema.Int,
  components: Schema.partial(Schema.Record({ key: ComponentNameSchema, value: PartSchema })),
  token: Schema.NullOr(Schema.Struct({
    token: Schema.String,
    init: Schema.String,
    spellings: Schema.Array(Schema.String),
    encoders: Schema.Array(ComponentNameSchema),
    trained: Schema.Array(ComponentNameSchema),
    normReprojection: Schema.Boolean
  })),
  ema: Schema.Boolean
})
export type ModelManifest = typeof ModelManifest.Type

/** The manifest and every tensor of model.safetensors by name (tfjs layout), as a training run leaves them. */
const manifestOf = (model: TrainingModel, steps: number, ema: boolean): ModelManifest => {
  const components: { -readonly [K in keyof ModelManifest["components"]]: ModelManifest["components"][K] } = {}
  for (const [name, part] of Object.entries(model.adaptation.components)) {
    if (part === undefined) continue
    components[name as ComponentName] = part.kind === "full"
      ? { kind: "full" }
      : { kind: "lora", rank: part.rank, alpha: part.alpha, dropout: part.dropout, targets: part.targets, modules: part.modules }
  }
  const token = model.adaptation.token
  return {
    format: "sardine-trained-model",
    version: 1,
    layout: "tfjs",
    family: model.pipeline.family,
    steps,
    components,
    token: token === undefined ? null : {
      token: token.token,
      init: token.init,
      spellings: token.spellings,
      encoders: [...token.rows.keys()],
      trained: token.trained,
      normReprojection: token.normReprojection
    },
    ema
  }
}

/** Every tensor model.safetensors holds: the trainables plus untrained token rows. */
export const modelTensors = (model: TrainingModel): Array<readonly [string, tf.Tensor]> => {
  const out: Array<readonly [string, tf.Tensor]> = model.trainables.map((t) => [t.name, t.variable] as const)
  const names = new Set(out.map(([n]) => n))
  for (const [encoder, rows] of model.adaptation.token?.rows ?? []) {
    const name = `${encoder}.${ADDED_TOKEN_EMBEDDING}`
    if (!names.has(name)) out.push([name, rows])
  }
  return out
}

const toWrite = (entries: ReadonlyArray<readonly [string, tf.Tensor]>): Array<TensorToWrite> =>
  entries.map(([name, tensor]) => ({ name, dtype: "F32", shape: tensor.shape, data: () => tensor.dataSync() as Float32Array }))

/** Writes the final model of a run into `dir` (each file atomically, the manifest last). */
export const writeTrainedModel = (
  dir: string,
  model: TrainingModel,
  steps: number,
  ema: EmaState | undefined,
  history: ReadonlyArray<StepRecord>
): Effect.Effect<void, SafetensorsError | DataFolderError> =>
  Effect.gen(function*() {
    yield* writeSafetensors(join(dir, MODEL_WEIGHTS), toWrite(modelTensors(model)), { format: "sardine-model" })
    if (ema !== undefined) yield* writeSafetensors(join(dir, EMA_WEIGHTS), toWrite([...ema]), { format: "sardine-model" })
    yield* writeIndexFile(join(dir, TRAINING_HISTORY), { steps: history })
    yield* writeIndexFile(join(dir, MODEL_MANIFEST), manifestOf(model, steps, ema !== undefined))
  })

export const readModelManifest = (dir: string): Effect.Effect<ModelManifest, DataFolderError> =>
  readIndexFile(join(dir, MODEL_MANIFEST), ModelManifest)

/** A component's parameter map (the pipeline's own). */
const parametersOf = (pipeline: StableDiffusionPipeline, name: ComponentName): Map<string, tf.Tensor> | undefined =>
  name === "unet" ? pipeline.unet.parameters
    : name === "vae" ? pipeline.vae.parameters
    : pipeline.textEncoders.find((e) => e.name === name)?.parameters

/**
 * Applies a trained model folder to a freshly loaded base pipeline: fully trained weights replace the
 * pipeline's (in its maps), LoRA adapters and token rows are returned as the Adaptation to run with.
 * With `useEma` and an EMA in the folder, the averaged values are used. The caller owns the tensors
 * (`disposeAdaptation`, `disposePipeline`).
 */
export const applyTrainedModel = (
  pipeline: StableDiffusionPipeline,
  dir: string,
  options: { readonly useEma: boolean }
): Effect.Effect<{ readonly manifest: ModelManifest; readonly adaptation: Adaptation }, SafetensorsError | DataFolderError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const manifest = yield* readModelManifest(dir)
      const manifestFile = join(dir, MODEL_MANIFEST)
      if (manifest.family !== pipeline.family) {
        return yield* new DataFolderError({ file: manifestFile, reason: `was trained on an ${manifest.family} base, not this ${pipeline.family} one (${pipeline.folder})` })
      }
      const readStored = yield* trainedTensorReader(dir, manifest, options.useEma)
      const created: Array<tf.Tensor> = []
      const read = (name: string, shape?: ReadonlyArray<number>) =>
        Effect.gen(function*() {
          const stored = yield* readStored(name)
          if (shape !== undefined && (stored.shape.length !== shape.length || stored.shape.some((d, i) => d !== shape[i]))) {
            return yield* new SafetensorsError({ file: join(dir, MODEL_WEIGHTS), tensor: name, reason: `has shape [${stored.shape}], the model needs [${shape}]` })
          }
          const tensor = tf.tensor(stored.data, stored.shape.slice(), "float32")
          created.push(tensor)
          return tensor
        })
      return yield* Effect.gen(function*() {
        const components: Record<string, Adaptation["components"][ComponentName]> = {}
        for (const [key, part] of Object.entries(manifest.components)) {
          const name = key as ComponentName
          if (part === undefined) continue
          const parameters = parametersOf(pipeline, name)
          if (parameters === undefined) return yield* new DataFolderError({ file: manifestFile, reason: `names ${name}, which the base has not` })
          if (part.kind === "full") {
            for (const [parameter, current] of parameters) {
              if (parameter === ADDED_TOKEN_EMBEDDING) continue
              const trained = yield* read(`${name}.${parameter}`, current.shape)
              current.dispose()
              parameters.set(parameter, trained)
            }
            components[name] = { kind: "full" }
            continue
          }
          const loraWeights = new Map<string, LoraWeights>()
          for (const m of part.modules) {
            if (!parameters.has(`${m.module}.weight`)) {
              return yield* new DataFolderError({ file: manifestFile, reason: `has a LoRA on ${name}.${m.module}, which the base has not` })
            }
            loraWeights.set(m.module, {
              down: yield* read(`${name}.${m.module}.lora_A.weight`),
              up: yield* read(`${name}.${m.module}.lora_B.weight`)
            })
          }
          const lora: LoraPart = { ...part, weights: loraWeights }
          components[name] = lora
        }
        let token: TokenPart | undefined
        if (manifest.token !== null) {
          const rows = new Map<ComponentName, tf.Tensor>()
          const tokenizers = new Map<ComponentName, ClipTokenizer>()
          for (const encoder of pipeline.textEncoders) {
            const name = encoder.name as ComponentName
            rows.set(name, yield* read(`${name}.${ADDED_TOKEN_EMBEDDING}`, [manifest.token.spellings.length, encoder.plan.config.hidden_size]))
            const tokenizer = yield* Effect.try({
              try: () => tokenizerWithToken(encoder.tokenizer, manifest.token!.spellings, encoder.plan.config.vocab_size),
              catch: (e) => new DataFolderError({ file: manifestFile, reason: `its token cannot be added to ${name}'s tokenizer: ${(e as Error).message}` })
            })
            tokenizers.set(name, tokenizer)
          }
          token = { ...manifest.token, rows, tokenizers }
        }
        return { manifest, adaptation: { components, ...(token === undefined ? {} : { token }) } }
      }).pipe(Effect.onError(() => Effect.sync(() => tf.dispose(created))))
    })
  )

/** A trained tensor's values, tfjs layout. */
export interface StoredTensor {
  readonly shape: ReadonlyArray<number>
  readonly data: Float32Array
}

/**
 * Reads tensors of a trained model folder by name, the EMA's value when `useEma` and the folder has
 * one for that name, otherwise the final weights'. Files close with the scope.
 */
export const trainedTensorReader = (dir: string, manifest: ModelManifest, useEma: boolean) =>
  Effect.gen(function*() {
    const weightsFile = join(dir, MODEL_WEIGHTS)
    const weights = yield* openSafetensors(weightsFile)
    const averaged = manifest.ema && useEma ? yield* openSafetensors(join(dir, EMA_WEIGHTS)) : undefined
    return (name: string): Effect.Effect<StoredTensor, SafetensorsError> =>
      Effect.gen(function*() {
        const source = averaged?.header.byName.has(name) ? averaged : weights
        const info = source.header.byName.get(name)
        if (info === undefined) return yield* new SafetensorsError({ file: weightsFile, tensor: name, reason: "is missing" })
        return { shape: info.shape, data: yield* source.readFloat32(name) }
      })
  })
