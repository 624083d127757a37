import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { join } from "node:path"
import { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { openSafetensors } from "../../safetensors/safetensors-reader.ts"
import { writeSafetensors, type TensorToWrite } from "../../safetensors/safetensors-writer.ts"
import { ResolvedAdaptation, type ComponentName } from "../../../framework/declaration/adaptation.ts"
import { partition } from "../../../framework/declaration/partition.ts"
import { ADDED_TOKEN_EMBEDDING } from "../clip-text-model.ts"
import { loadControlNet, type StableDiffusionPipeline } from "../pipeline-loader.ts"
import type { AdaptationTensors, TokenRows } from "./adapted-pipeline.ts"
import type { EmaState } from "./exponential-moving-average.ts"
import { tokenizerWithToken } from "./learned-token.ts"
import { downShape, upShape, type LoraWeights } from "./lora.ts"
import { DataFolderError, readIndexFile, writeIndexFile } from "./index-files.ts"
import type { StepRecord } from "./training-checkpoint.ts"
import { adaptedModels, type TrainingModel } from "./trainable-model.ts"
import { CONTROLNET_EMA_FOLDER, CONTROLNET_FOLDER, writeControlNetFolder } from "./trained-controlnet.ts"

/**
 * A finished train step's output, what `generate` and `export` read (next to the last checkpoint):
 *   model.json          the manifest below (with the resolved adaptation, adaptation.ts); written last, so its
 *                       presence means the model is complete
 *   model.safetensors   trained tensors, float32, tfjs layout:
 *                         `<component>.<parameter>`               every parameter a `full` treatment trains (its `only`)
 *                         `<component>.<module>.lora_A.weight`    LoRA A ([in, r]; conv [kh, kw, in, r])
 *                         `<component>.<module>.lora_B.weight`    LoRA B ([r, out]; conv [1, 1, r, out])
 *                         `<encoder>.text_model.embeddings.added_token_embedding.weight`  token rows [vectors, hidden]
 *                         `controlnet.<parameter>`, `controlnet.<module>.lora_A.weight`, …  a ControlNet's, alike
 *   ema.safetensors     the EMA of the trainable tensors under the same names (when declared)
 *   controlnet/         a conditioned experiment's trained ControlNet as a diffusers folder (LoRA merged): what
 *                       generation and export read; controlnet-ema/ with the EMA's values (when declared)
 *   training.json       the metrics of every step
 * Components are named as the pipeline folders: unet, vae, text_encoder, text_encoder_2.
 */

export const MODEL_MANIFEST = "model.json"
export const MODEL_WEIGHTS = "model.safetensors"
export const EMA_WEIGHTS = "ema.safetensors"
export const TRAINING_HISTORY = "training.json"

export const ModelManifest = Schema.Struct({
  format: Schema.Literal("sardine-trained-model"),
  version: Schema.Literal(2),
  layout: Schema.Literal("tfjs"),
  family: Schema.Literal("sd", "sdxl"),
  steps: Schema.Int,
  /** What was trained, exactly as the train step received it. */
  adaptation: ResolvedAdaptation,
  ema: Schema.Boolean
})
export type ModelManifest = typeof ModelManifest.Type

/** Every tensor model.safetensors holds: the trainables plus untrained token rows. */
export const modelTensors = (model: TrainingModel): Array<readonly [string, tf.Tensor]> => {
  const out: Array<readonly [string, tf.Tensor]> = model.trainables.map((t) => [t.name, t.variable] as const)
  const names = new Set(out.map(([n]) => n))
  for (const [encoder, { rows }] of model.tensors.token) {
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
    yield* writeTrainedControlNet(dir, model.tensors, ema)
    yield* writeIndexFile(join(dir, TRAINING_HISTORY), { steps: history })
    const manifest: ModelManifest = {
      format: "sardine-trained-model",
      version: 2,
      layout: "tfjs",
      family: model.pipeline.family,
      steps,
      adaptation: model.tensors.adaptation,
      ema: ema !== undefined
    }
    yield* writeIndexFile(join(dir, MODEL_MANIFEST), manifest)
  })

/** The ControlNet folders of a trained model: the final weights, and the EMA's values of what trained. */
const writeTrainedControlNet = (dir: string, tensors: AdaptationTensors, ema: EmaState | undefined) =>
  Effect.gen(function*() {
    const controlnet = tensors.controlnet
    const treatment = tensors.adaptation.controlnet?.treatment
    if (controlnet === undefined || treatment === undefined) return
    const adapters = tensors.lora.get("controlnet")
    const scale = treatment._tag === "lora" ? treatment.scale : 1
    yield* writeControlNetFolder(join(dir, CONTROLNET_FOLDER), controlnet, () => undefined, adapters === undefined ? undefined : { adapters, scale })
    if (ema === undefined) return
    const averaged = (name: string) => ema.get(`controlnet.${name}`)
    const averagedAdapters = adapters === undefined ? undefined : new Map(
      [...adapters].map(([module, w]) => [module, { down: averaged(`${module}.lora_A.weight`) ?? w.down, up: averaged(`${module}.lora_B.weight`) ?? w.up }])
    )
    yield* writeControlNetFolder(
      join(dir, CONTROLNET_EMA_FOLDER),
      controlnet,
      averaged,
      averagedAdapters === undefined ? undefined : { adapters: averagedAdapters, scale }
    )
  })

export const readModelManifest = (dir: string): Effect.Effect<ModelManifest, DataFolderError> => readIndexFile(join(dir, MODEL_MANIFEST), ModelManifest)

/** Which weights a trained model folder gives: the EMA's when asked for and kept, else the final ones. */
export const weightsUsed = (manifest: ModelManifest, useEma: boolean): "ema" | "final" => (manifest.ema && useEma ? "ema" : "final")

/** A conditioned experiment's trained ControlNet folder of the weights used (the EMA's when asked for and kept). */
export const controlNetFolderOf = (dir: string, manifest: ModelManifest, useEma: boolean) =>
  join(dir, weightsUsed(manifest, useEma) === "ema" ? CONTROLNET_EMA_FOLDER : CONTROLNET_FOLDER)

/**
 * Applies a trained model folder to a freshly loaded base pipeline: fully trained weights replace the
 * pipeline's (in its maps), LoRA adapters and token rows are returned as the tensors to run with, for
 * the same partition of the parameters as training made. With `useEma` and an EMA in the folder, the
 * averaged values are used. The caller owns the tensors (`disposeAdaptation`, `disposePipeline`).
 */
export const applyTrainedModel = (
  pipeline: StableDiffusionPipeline,
  dir: string,
  options: { readonly useEma: boolean }
): Effect.Effect<{ readonly manifest: ModelManifest; readonly tensors: AdaptationTensors }, SafetensorsError | DataFolderError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const manifest = yield* readModelManifest(dir)
      const manifestFile = join(dir, MODEL_MANIFEST)
      if (manifest.family !== pipeline.family) {
        return yield* new DataFolderError({
          file: manifestFile,
          reason: `was trained on an ${manifest.family} base, not this ${pipeline.family} one (${pipeline.folder})`
        })
      }
      const adaptation = manifest.adaptation
      const models = yield* Effect.try({
        try: () => adaptedModels(pipeline, adaptation),
        catch: (e) => new DataFolderError({ file: manifestFile, reason: (e as Error).message })
      })
      const readStored = yield* trainedTensorReader(dir, manifest, options.useEma)
      const created: Array<tf.Tensor> = []
      const read = (name: string, shape: ReadonlyArray<number>) =>
        Effect.gen(function*() {
          const stored = yield* readStored(name)
          if (stored.shape.length !== shape.length || stored.shape.some((d, i) => d !== shape[i])) {
            return yield* new SafetensorsError({
              file: join(dir, MODEL_WEIGHTS),
              tensor: name,
              reason: `has shape [${stored.shape}], the model needs [${shape}]`
            })
          }
          const tensor = tf.tensor(stored.data, stored.shape.slice(), "float32")
          created.push(tensor)
          return tensor
        })
      return yield* Effect.gen(function*() {
        const lora = new Map<ComponentName, ReadonlyMap<string, LoraWeights>>()
        for (const [name, model, treatment] of models) {
          if (treatment._tag === "frozen") continue
          const { adapted, trainable } = partition(model.specs, treatment)
          for (const parameter of trainable) {
            const current = model.parameters.get(parameter)!
            const trained = yield* read(`${name}.${parameter}`, current.shape)
            current.dispose()
            model.parameters.set(parameter, trained)
          }
          if (treatment._tag !== "lora") continue
          const weights = new Map<string, LoraWeights>()
          for (const m of adapted) {
            weights.set(m.module, {
              down: yield* read(`${name}.${m.module}.lora_A.weight`, downShape(m, treatment.rank)),
              up: yield* read(`${name}.${m.module}.lora_B.weight`, upShape(m, treatment.rank))
            })
          }
          lora.set(name, weights)
        }
        const token = new Map<ComponentName, TokenRows>()
        if (adaptation.token !== null) {
          const { spellings } = adaptation.token
          for (const encoder of pipeline.textEncoders) {
            const rows = yield* read(`${encoder.name}.${ADDED_TOKEN_EMBEDDING}`, [spellings.length, encoder.plan.config.hidden_size])
            const tokenizer = yield* Effect.try({
              try: () => tokenizerWithToken(encoder.tokenizer, spellings, encoder.plan.config.vocab_size),
              catch: (e) =>
                new DataFolderError({ file: manifestFile, reason: `its token cannot be added to ${encoder.name}'s tokenizer: ${(e as Error).message}` })
            })
            token.set(encoder.name, { rows, tokenizer })
          }
        }
        // The ControlNet comes whole (LoRA merged) from its diffusers folder.
        const controlnet = adaptation.controlnet === undefined
          ? undefined
          : yield* loadControlNet(controlNetFolderOf(dir, manifest, options.useEma)).pipe(
            Effect.mapError((e) => new DataFolderError({ file: join(dir, CONTROLNET_FOLDER), reason: e.message }))
          )
        return { manifest, tensors: { adaptation, lora, token, ...(controlnet === undefined ? {} : { controlnet }) } }
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
    const averaged = weightsUsed(manifest, useEma) === "ema" ? yield* openSafetensors(join(dir, EMA_WEIGHTS)) : undefined
    return (name: string): Effect.Effect<StoredTensor, SafetensorsError> =>
      Effect.gen(function*() {
        const source = averaged?.header.byName.has(name) ? averaged : weights
        const info = source.header.byName.get(name)
        if (info === undefined) return yield* new SafetensorsError({ file: weightsFile, tensor: name, reason: "is missing" })
        return { shape: info.shape, data: yield* source.readFloat32(name) }
      })
  })
