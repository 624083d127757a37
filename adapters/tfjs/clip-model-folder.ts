import type * as tf from "@tensorflow/tfjs-core"
import { FileSystem } from "@effect/platform"
import { isPlatformError, type PlatformError } from "@effect/platform/Error"
import { Effect, Schema } from "effect"
import { join } from "node:path"
import { writeFileAtomic } from "../../framework/files/atomic-write.ts"
import { writeFolderAtomically } from "../files/atomic-write-node.ts"
import { type ClipImageConfig, readClipImageConfig } from "../onnx/clip-image-preprocess.ts"
import { loadClipTokenizer } from "../tokenizer/tokenizer-files.ts"
import type { ClipTokenizer } from "../tokenizer/clip-tokenizer.ts"
import { loadParameters, saveParameters } from "./checkpoint.ts"
import { isIgnoredClipTensor } from "./clip-text-model.ts"
import { clipModelSpecs, decodeClipModelConfig, type ClipModelPlan } from "./clip-model.ts"
import type { ParameterMap } from "./layers.ts"
import { readJsonFile } from "./model-config.ts"
import { pathExists } from "./node-file-system.ts"
import { fileProblem, isNotFound } from "../../framework/files/file-errors.ts"

/**
 * A transformers CLIPModel folder, as `CLIPModel.save_pretrained` + `CLIPTokenizer.save_pretrained` +
 * `CLIPImageProcessor.save_pretrained` write it:
 *   config.json               CLIPConfig (text_config, vision_config, projection_dim, logit_scale_init_value)
 *   model.safetensors         the state dict in torch layout (`text_model.…`, `vision_model.…`, projections, logit_scale)
 *   vocab.json, merges.txt    the CLIP BPE tokenizer (or tokenizer.json), tokenizer_config.json for the context length
 *   preprocessor_config.json  CLIPImageProcessor: shortest edge, centre crop, mean, std
 * An architecture folder (what a `clipModel` declaration names) is the same without the weights;
 * its preprocessor_config.json may be left out (CLIP's defaults at the model's image size apply).
 * The trained model's config.json is the architecture's, byte for byte.
 */

export const CLIP_CONFIG = "config.json"
export const CLIP_WEIGHTS = "model.safetensors"
export const CLIP_PREPROCESSOR = "preprocessor_config.json"
const TOKENIZER_FILES = ["vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"]

/** OpenAI CLIP's normalisation, CLIPImageProcessor's default. */
const OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073] as const
const OPENAI_STD = [0.26862954, 0.26130258, 0.27577711] as const

/** A CLIP folder sardine cannot use; names the file and what is wrong with it. */
export class ClipFolderError extends Schema.TaggedError<ClipFolderError>()("ClipFolderError", {
  file: Schema.String,
  reason: Schema.String,
  /** The failure of the part that read or wrote the file, when one failed. */
  cause: Schema.optional(Schema.Defect)
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

export interface ClipModelDescription {
  readonly plan: ClipModelPlan
  readonly tokenizer: ClipTokenizer
  readonly image: ClipImageConfig
}

const fsFailure = (file: string) => (e: PlatformError) => new ClipFolderError({ file, reason: fileProblem(e), cause: e })

const exists = (file: string) => pathExists(file).pipe(Effect.mapError(fsFailure(file)))

const asFolderError = (e: { readonly file: string; readonly reason: string }) => Effect.fail(new ClipFolderError({ file: e.file, reason: e.reason, cause: e }))

/**
 * The model a folder describes, its tokenizer and its preprocessing, checked against each other:
 * every token id has an embedding, the context fits the position table, pooling finds the
 * tokenizer's end-of-text token, the crop is the image tower's input size.
 */
export const readClipModelDescription = (folder: string, options: { readonly preprocessorRequired: boolean }) =>
  Effect.gen(function*() {
    const configFile = join(folder, CLIP_CONFIG)
    const json = yield* readJsonFile(configFile)
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      return yield* new ClipFolderError({ file: configFile, reason: "is not a JSON object" })
    }
    const modelType = (json as { model_type?: unknown }).model_type
    if (modelType !== "clip") {
      return yield* new ClipFolderError({
        file: configFile,
        reason: `model_type must be "clip" (a transformers CLIPConfig), got ${JSON.stringify(modelType) ?? "nothing"}`
      })
    }
    const plan = yield* decodeClipModelConfig(json, configFile)
    const tokenizer = yield* loadClipTokenizer(folder)
    const text = plan.text.config
    const problem = (reason: string, file = configFile) => Effect.fail(new ClipFolderError({ file, reason }))
    if (tokenizer.size > text.vocab_size) yield* problem(`text_config.vocab_size ${text.vocab_size} is smaller than the ${tokenizer.size} ids of the tokenizer`)
    if (tokenizer.maxLength > text.max_position_embeddings) {
      yield* problem(
        `text_config.max_position_embeddings ${text.max_position_embeddings} is below the tokenizer's context ${tokenizer.maxLength} (set model_max_length in tokenizer_config.json)`
      )
    }
    // eos_token_id 2 marks configs older than transformers#24773: pooling then takes the largest id.
    if (text.eos_token_id !== 2 && text.eos_token_id !== tokenizer.eosId) {
      yield* problem(`text_config.eos_token_id ${text.eos_token_id} is not the tokenizer's end-of-text id ${tokenizer.eosId}`)
    }
    const preprocessorFile = join(folder, CLIP_PREPROCESSOR)
    const size = plan.vision.image_size
    const image: ClipImageConfig = options.preprocessorRequired || (yield* exists(preprocessorFile))
      ? yield* readClipImageConfig(preprocessorFile)
      : { size, cropHeight: size, cropWidth: size, mean: OPENAI_MEAN, std: OPENAI_STD }
    if (image.cropHeight !== size || image.cropWidth !== size) {
      yield* problem(`crop_size ${image.cropHeight} × ${image.cropWidth} differs from vision_config.image_size ${size}`, preprocessorFile)
    }
    const description: ClipModelDescription = { plan, tokenizer, image }
    return description
  }).pipe(Effect.catchTags({ ModelConfigError: asFolderError, TokenizerError: asFolderError, ScorerError: asFolderError }))

/** The weights of a CLIPModel folder, by state-dict name in tfjs layout. */
export const loadClipModelWeights = (folder: string, plan: ClipModelPlan): Effect.Effect<ParameterMap, ClipFolderError> => {
  const file = join(folder, CLIP_WEIGHTS)
  return loadParameters("CLIPModel", clipModelSpecs(plan), [file], { ignore: isIgnoredClipTensor }).pipe(
    Effect.mapError((e) => new ClipFolderError({ file, reason: e.message }))
  )
}

/** CLIPImageProcessor's saved form of the defaults (OpenAI's mean and std at the model's size), for architectures without one. */
const preprocessorJson = (image: ClipImageConfig) => ({
  crop_size: { height: image.cropHeight, width: image.cropWidth },
  do_center_crop: true,
  do_convert_rgb: true,
  do_normalize: true,
  do_rescale: true,
  do_resize: true,
  image_mean: image.mean,
  image_processor_type: "CLIPImageProcessor",
  image_std: image.std,
  resample: 3,
  rescale_factor: 1 / 255,
  size: { shortest_edge: image.size }
})

/**
 * Writes a CLIPModel folder at `out` from the architecture folder it was built from and its trained
 * parameters: under a temporary name first, renamed into place when complete (an existing `out` is replaced).
 */
export const writeClipModelFolder = (
  out: string,
  architecture: string,
  description: ClipModelDescription,
  parameters: ReadonlyMap<string, tf.Tensor>
): Effect.Effect<void, ClipFolderError> =>
  writeFolderAtomically(out, (temporary) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      // The architecture's files are copied as written: JSON.parse + stringify would turn 1.0 into 1,
      // which transformers' typed configs refuse.
      const copied = (name: string) =>
        fs.copyFile(join(architecture, name), join(temporary, name)).pipe(
          Effect.as(true),
          Effect.catchIf(isNotFound, () => Effect.succeed(false)),
          Effect.mapError(fsFailure(join(architecture, name)))
        )
      yield* fs.copyFile(join(architecture, CLIP_CONFIG), join(temporary, CLIP_CONFIG)).pipe(Effect.mapError(fsFailure(join(architecture, CLIP_CONFIG))))
      for (const name of TOKENIZER_FILES) yield* copied(name)
      if (!(yield* copied(CLIP_PREPROCESSOR))) {
        yield* writeFileAtomic(join(temporary, CLIP_PREPROCESSOR), `${JSON.stringify(preprocessorJson(description.image), null, 2)}\n`).pipe(
          Effect.mapError(fsFailure(join(out, CLIP_PREPROCESSOR)))
        )
      }
      yield* saveParameters(join(temporary, CLIP_WEIGHTS), clipModelSpecs(description.plan), parameters).pipe(
        Effect.mapError((e) => new ClipFolderError({ file: join(out, CLIP_WEIGHTS), reason: e.message, cause: e }))
      )
    }), { replace: true }).pipe(
      Effect.mapError((e) => isPlatformError(e) ? fsFailure(out)(e) : e)
    )
