import { FileSystem } from "@effect/platform"
import { isPlatformError, type PlatformError } from "@effect/platform/Error"
import * as tf from "@tensorflow/tfjs-core"
import { Effect, Option } from "effect"
import { dirname, join } from "node:path"
import { filesUnder } from "../../../framework/files/folder-files.ts"
import { writeFolderAtomically } from "../../files/atomic-write-node.ts"
import type { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { saveParameters } from "../checkpoint.ts"
import { TOKEN_EMBEDDING } from "../clip-text-model.ts"
import { tensorSpec, type ParameterSpec } from "../layers.ts"
import type { LoadedModel, StableDiffusionPipeline } from "../pipeline-loader.ts"
import { treatmentsOf, type ComponentName } from "../../../framework/declaration/adaptation.ts"
import type { AdaptationTensors } from "../training/adapted-pipeline.ts"
import { pathExists } from "../node-file-system.ts"
import { mergedWeight } from "../training/lora.ts"
import { ExportError } from "./export-error.ts"
import { withEntriesAdded, withMember } from "./json-text.ts"
import { fileProblem, isNotFound } from "../../../framework/files/file-errors.ts"

/**
 * A trained model as a complete diffusers pipeline folder: LoRA merged into the base weights
 * (W + alpha/r · A·B), fully trained components as trained, a learned token appended to each text
 * encoder's embedding table (vocab_size grows) and added to each tokenizer, every untouched
 * component copied as it is. Written under a temporary name and renamed when complete.
 */

const WEIGHT_FILE = /\.(safetensors|bin|ckpt|pt)$|\.safetensors\.index\.json$|\.bin\.index\.json$/

const fsError = (what: string) => (e: PlatformError) => new ExportError({ format: "diffusers", reason: `${what}: ${fileProblem(e)}`, cause: e })

const modelOf = (pipeline: StableDiffusionPipeline, name: ComponentName): LoadedModel<unknown> =>
  name === "unet" ? pipeline.unet : name === "vae" ? pipeline.vae : pipeline.textEncoders.find((e) => e.name === name)!

/** The component's parameters as the exported model has them (new tensors where they differ from the map's). */
const finalParameters = (
  model: LoadedModel<unknown>,
  name: ComponentName,
  tensors: AdaptationTensors
): { readonly specs: Array<ParameterSpec>; readonly parameters: Map<string, tf.Tensor>; readonly created: Array<tf.Tensor> } => {
  const parameters = new Map(model.parameters)
  const specs = model.specs.slice()
  const created: Array<tf.Tensor> = []
  const treatment = tensors.adaptation.components[name]
  if (treatment?._tag === "lora") {
    for (const [module, weights] of tensors.lora.get(name) ?? []) {
      const merged = mergedWeight(parameters.get(`${module}.weight`)!, weights, treatment.scale)
      created.push(merged)
      parameters.set(`${module}.weight`, merged)
    }
  }
  const rows = tensors.token.get(name)?.rows
  if (rows !== undefined) {
    const table = tf.concat([parameters.get(TOKEN_EMBEDDING)!, rows], 0)
    created.push(table)
    parameters.set(TOKEN_EMBEDDING, table)
    // The map held TOKEN_EMBEDDING (read above), so its spec is there; an embedding table is stored as-is.
    specs[specs.findIndex((s) => s.name === TOKEN_EMBEDDING)] = tensorSpec(TOKEN_EMBEDDING, table.shape)
  }
  return { specs, parameters, created }
}

/**
 * Copies every file under `from` whose '/'-separated path `keep` accepts to the same path under `to`.
 * Links are followed (a Hugging Face snapshot is a folder of links into its cache), so the copy stands
 * alone and the tokenizer edits below never write through a link into the cache.
 */
const copyFolder = (fs: FileSystem.FileSystem, from: string, to: string, keep: (path: string) => boolean) =>
  Effect.flatMap(filesUnder(from), (files) =>
    Effect.forEach(
      files.filter((file) => keep(file.path)),
      (file) =>
        Effect.zipRight(
          fs.makeDirectory(dirname(join(to, file.path)), { recursive: true }),
          fs.copyFile(join(from, file.path), join(to, file.path))
        ),
      { discard: true }
    ))

/**
 * Adds the token's spellings to a tokenizer folder in every form transformers reads (classic files and
 * tokenizer.json), editing only the added-token members. They are added unnormalised, so they match
 * the prompt's exact spelling: transformers 5 then reports `<SAR>` (not the lower-cased `<sar>`) from
 * `tokenize`, which diffusers' `maybe_convert_prompt` needs to expand `<SAR>` to `<SAR> <SAR>_1 …`.
 */
const addTokensToTokenizer = (fs: FileSystem.FileSystem, folder: string, spellings: ReadonlyArray<string>, firstId: number) =>
  Effect.gen(function*() {
    const added = spellings.map((content, i) => ({ id: firstId + i, content }))
    const entry = (content: string) => ({ content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: false })
    /** Edits a JSON file; an absent one is created from `{}` unless `onlyIfPresent`. */
    const edit = (file: string, change: (text: string) => string, onlyIfPresent = false) =>
      Effect.gen(function*() {
        const text = yield* fs.readFileString(file).pipe(Effect.map(Option.some), Effect.catchIf(isNotFound, () => Effect.succeed(Option.none<string>())))
        if (onlyIfPresent && Option.isNone(text)) return
        yield* fs.writeFileString(file, change(Option.getOrElse(text, () => "{}\n")))
      })
    yield* edit(join(folder, "added_tokens.json"), (text) => added.reduce((t, a) => withMember(t, a.content, a.id), text))
    yield* edit(
      join(folder, "tokenizer_config.json"),
      (text) => withEntriesAdded(text, "added_tokens_decoder", added.map((t) => [String(t.id), entry(t.content)]), "object")
    )
    yield* edit(
      join(folder, "tokenizer.json"),
      (text) => withEntriesAdded(text, "added_tokens", added.map((t) => ({ id: t.id, ...entry(t.content) })), "array"),
      true
    )
  })

/** Where the merged export of a conditioned experiment puts its ControlNet: a diffusers ControlNetModel folder beside the pipeline's components. */
export const MERGED_CONTROLNET_FOLDER = "controlnet"

/**
 * Writes the merged pipeline of `pipeline` + `tensors` (already applied to the maps) to the folder `out`;
 * with `controlnet` (a trained ControlNetModel folder), a copy of it as `out/controlnet`, in the same
 * atomic rename. model_index.json is left as the base's, so the folder still loads as the plain pipeline.
 */
export const writeMergedPipeline = (
  pipeline: StableDiffusionPipeline,
  tensors: AdaptationTensors,
  out: string,
  controlnet?: string
): Effect.Effect<void, ExportError | SafetensorsError> =>
  Effect.gen(function*() {
    if (yield* pathExists(out).pipe(Effect.mapError(fsError(`cannot look at ${out}`)))) {
      return yield* new ExportError({ format: "diffusers", reason: `${out} already exists; choose a new --out folder` })
    }
    const changed = new Set<ComponentName>([
      ...treatmentsOf(tensors.adaptation).filter(([, t]) => t._tag !== "frozen").map(([name]) => name),
      ...tensors.token.keys()
    ])
    yield* writeFolderAtomically(out, (temporary) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        // Unchanged components are copied whole; a changed one keeps its config and other files, not its weights.
        yield* copyFolder(fs, pipeline.folder, temporary, (path) => !(changed.has(path.split("/")[0] as ComponentName) && WEIGHT_FILE.test(path)))
          .pipe(Effect.mapError(fsError(`cannot copy ${pipeline.folder}`)))
        for (const name of changed) {
          const model = modelOf(pipeline, name)
          const { specs, parameters, created } = finalParameters(model, name, tensors)
          const weights = name.startsWith("text_encoder") ? "model.safetensors" : "diffusion_pytorch_model.safetensors"
          yield* saveParameters(join(temporary, name, weights), specs, parameters).pipe(Effect.ensuring(Effect.sync(() => tf.dispose(created))))
        }
        if (controlnet !== undefined) {
          yield* copyFolder(fs, controlnet, join(temporary, MERGED_CONTROLNET_FOLDER), () => true)
            .pipe(Effect.mapError(fsError(`cannot copy the ControlNet ${controlnet}`)))
        }
        const token = tensors.adaptation.token
        if (token !== null) {
          for (const encoder of pipeline.textEncoders) {
            const vocab = encoder.plan.config.vocab_size
            // Only vocab_size changes: every other number keeps its literal (1.0 stays 1.0).
            const configFile = join(temporary, encoder.name, "config.json")
            yield* fs.readFileString(configFile).pipe(
              Effect.flatMap((text) => fs.writeFileString(configFile, withMember(text, "vocab_size", vocab + token.spellings.length))),
              Effect.zipRight(addTokensToTokenizer(fs, join(temporary, encoder.name.replace("text_encoder", "tokenizer")), token.spellings, vocab)),
              Effect.mapError(fsError(`cannot add ${token.token} to ${encoder.name}`))
            )
          }
        }
      })).pipe(Effect.mapError((e) => isPlatformError(e) ? fsError(`cannot move the pipeline to ${out}`)(e) : e))
  })
