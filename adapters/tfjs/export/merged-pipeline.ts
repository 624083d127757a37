import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import { cp, readFile, stat, writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { writeFolderAtomically } from "../../files/atomic-write-node.ts"
import type { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { saveParameters } from "../checkpoint.ts"
import { TOKEN_EMBEDDING } from "../clip-text-model.ts"
import { tensorSpec, type ParameterSpec } from "../layers.ts"
import type { LoadedModel, StableDiffusionPipeline } from "../pipeline-loader.ts"
import { treatmentsOf, type ComponentName } from "../../../framework/declaration/adaptation.ts"
import type { AdaptationTensors } from "../training/adapted-pipeline.ts"
import { mergedWeight } from "../training/lora.ts"
import { ExportError } from "./export-error.ts"
import { withEntriesAdded, withMember } from "./json-text.ts"

/**
 * A trained model as a complete diffusers pipeline folder: LoRA merged into the base weights
 * (W + alpha/r · A·B), fully trained components as trained, a learned token appended to each text
 * encoder's embedding table (vocab_size grows) and added to each tokenizer, every untouched
 * component copied as it is. Written under a temporary name and renamed when complete.
 */

const WEIGHT_FILE = /\.(safetensors|bin|ckpt|pt)$|\.safetensors\.index\.json$|\.bin\.index\.json$/

const fsError = (what: string) => (e: unknown) => new ExportError({ format: "diffusers", reason: `${what}: ${(e as Error).message}` })

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

/** A JSON file's text, or `{}` when it does not exist. */
const jsonText = (file: string): Promise<string> =>
  readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? "{}\n" : Promise.reject(e)))

/**
 * Adds the token's spellings to a tokenizer folder in every form transformers reads (classic files and
 * tokenizer.json), editing only the added-token members. They are added unnormalised, so they match
 * the prompt's exact spelling: transformers 5 then reports `<SAR>` (not the lower-cased `<sar>`) from
 * `tokenize`, which diffusers' `maybe_convert_prompt` needs to expand `<SAR>` to `<SAR> <SAR>_1 …`.
 */
const addTokensToTokenizer = async (folder: string, spellings: ReadonlyArray<string>, firstId: number): Promise<void> => {
  const added = spellings.map((content, i) => ({ id: firstId + i, content }))
  const entry = (content: string) => ({ content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: false })
  const edit = async (file: string, change: (text: string) => string, onlyIfPresent = false) => {
    const exists = await stat(file).then(() => true, () => false)
    if (onlyIfPresent && !exists) return
    await writeFile(file, change(await jsonText(file)))
  }
  await edit(join(folder, "added_tokens.json"), (text) => added.reduce((t, a) => withMember(t, a.content, a.id), text))
  await edit(
    join(folder, "tokenizer_config.json"),
    (text) => withEntriesAdded(text, "added_tokens_decoder", added.map((t) => [String(t.id), entry(t.content)]), "object")
  )
  await edit(
    join(folder, "tokenizer.json"),
    (text) => withEntriesAdded(text, "added_tokens", added.map((t) => ({ id: t.id, ...entry(t.content) })), "array"),
    true
  )
}

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
    const exists = yield* Effect.promise(() => stat(out).then(() => true, () => false))
    if (exists) return yield* new ExportError({ format: "diffusers", reason: `${out} already exists; choose a new --out folder` })
    const changed = new Set<ComponentName>([
      ...treatmentsOf(tensors.adaptation).filter(([, t]) => t._tag !== "frozen").map(([name]) => name),
      ...tensors.token.keys()
    ])
    yield* writeFolderAtomically(out, (temporary) =>
      Effect.gen(function*() {
        yield* Effect.tryPromise({
          try: () => {
            // Unchanged components are copied whole; a changed one keeps its config and other files, not its weights.
            const base = resolve(pipeline.folder)
            return cp(base, temporary, {
              recursive: true,
              filter: (source) => {
                const component = resolve(source).slice(base.length + 1).split(/[\\/]/)[0] as ComponentName
                return !(changed.has(component) && WEIGHT_FILE.test(source))
              }
            })
          },
          catch: fsError(`cannot copy ${pipeline.folder}`)
        })
        for (const name of changed) {
          const model = modelOf(pipeline, name)
          const { specs, parameters, created } = finalParameters(model, name, tensors)
          const weights = name.startsWith("text_encoder") ? "model.safetensors" : "diffusion_pytorch_model.safetensors"
          yield* saveParameters(join(temporary, name, weights), specs, parameters).pipe(Effect.ensuring(Effect.sync(() => tf.dispose(created))))
        }
        if (controlnet !== undefined) {
          yield* Effect.tryPromise({
            try: () => cp(controlnet, join(temporary, MERGED_CONTROLNET_FOLDER), { recursive: true }),
            catch: fsError(`cannot copy the ControlNet ${controlnet}`)
          })
        }
        const token = tensors.adaptation.token
        if (token !== null) {
          for (const encoder of pipeline.textEncoders) {
            const vocab = encoder.plan.config.vocab_size
            yield* Effect.tryPromise({
              try: async () => {
                // Only vocab_size changes: every other number keeps its literal (1.0 stays 1.0).
                const configFile = join(temporary, encoder.name, "config.json")
                await writeFile(configFile, withMember(await readFile(configFile, "utf8"), "vocab_size", vocab + token.spellings.length))
                await addTokensToTokenizer(join(temporary, encoder.name.replace("text_encoder", "tokenizer")), token.spellings, vocab)
              },
              catch: fsError(`cannot add ${token.token} to ${encoder.name}`)
            })
          }
        }
      })).pipe(Effect.mapError((e) => e._tag === "SystemError" || e._tag === "BadArgument" ? fsError(`cannot move the pipeline to ${out}`)(e) : e))
  })
