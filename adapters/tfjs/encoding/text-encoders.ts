import { Effect } from "effect"
import { join } from "node:path"
import { loadClipTokenizer } from "../../tokenizer/tokenizer-files.ts"
import { disposeParameters } from "../checkpoint.ts"
import { readJsonFile } from "../model-config.ts"
import { loadClipTextModel, PipelineError, type LoadedTextEncoder, type LoadError } from "../pipeline-loader.ts"

const WITH_PROJECTION: Record<string, boolean> = { CLIPTextModel: false, CLIPTextModelWithProjection: true }

/**
 * Only the text encoders and tokenizers of a pipeline folder (what `encode-text` needs: an SDXL
 * UNet is gigabytes it does not read). Released when the scope closes.
 */
export const loadTextEncoders = (folder: string) =>
  Effect.gen(function*() {
    const indexFile = join(folder, "model_index.json")
    const index = (yield* readJsonFile(indexFile)) as Record<string, unknown>
    const encoders: Array<LoadedTextEncoder> = []
    for (const name of ["text_encoder", "text_encoder_2"] as const) {
      const entry = index[name]
      const cls = Array.isArray(entry) && typeof entry[1] === "string" ? entry[1] : undefined
      if (cls === undefined) continue
      if (!(cls in WITH_PROJECTION)) {
        return yield* new PipelineError({
          file: indexFile,
          reason: `component "${name}" is ${cls}; sardine needs CLIPTextModel or CLIPTextModelWithProjection`
        })
      }
      const model = yield* Effect.acquireRelease(
        loadClipTextModel(join(folder, name), WITH_PROJECTION[cls] === true),
        (m) => Effect.sync(() => disposeParameters(m.parameters))
      )
      const tokenizer = yield* loadClipTokenizer(join(folder, name.replace("text_encoder", "tokenizer")))
      encoders.push({ ...model, name, tokenizer })
    }
    if (encoders.length === 0) return yield* new PipelineError({ file: indexFile, reason: "names no text_encoder or text_encoder_2" })
    return encoders as ReadonlyArray<LoadedTextEncoder>
  }) satisfies Effect.Effect<ReadonlyArray<LoadedTextEncoder>, LoadError, unknown>
