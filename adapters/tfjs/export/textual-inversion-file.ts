import { Effect } from "effect"
import type { ResolvedToken } from "../../../framework/declaration/adaptation.ts"
import type { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { writeSafetensors } from "../../safetensors/safetensors-writer.ts"
import { ADDED_TOKEN_EMBEDDING } from "../clip-text-model.ts"
import type { ModelManifest, StoredTensor } from "../training/trained-model-files.ts"
import { ExportError } from "./export-error.ts"

/**
 * A learned token in the diffusers textual-inversion format: `{"<token>": [vectors, hidden]}` for a
 * single text encoder; `{"clip_l": …, "clip_g": …}` (text_encoder, text_encoder_2) for SDXL, the layout
 * SDXL embeddings are published in and loaded per encoder with `load_textual_inversion`.
 */
export const writeTextualInversion = (
  manifest: ModelManifest,
  read: (name: string) => Effect.Effect<StoredTensor, SafetensorsError>,
  file: string
): Effect.Effect<ReadonlyArray<string>, ExportError | SafetensorsError> =>
  Effect.gen(function*() {
    const token = manifest.adaptation.token
    if (token === null) return yield* new ExportError({ format: "embedding", reason: "the model learned no token" })
    const rows = (encoder: string) => read(`${encoder}.${ADDED_TOKEN_EMBEDDING}`)
    const entries = manifest.family === "sdxl"
      ? [["clip_l", yield* rows("text_encoder")], ["clip_g", yield* rows("text_encoder_2")]] as const
      : [[token.token, yield* rows("text_encoder")]] as const
    yield* writeSafetensors(
      file,
      entries.map(([name, t]) => ({ name, dtype: "F32" as const, shape: t.shape, data: t.data })),
      { format: "pt", token: token.token }
    )
    return spelledOutNote(token)
  })

/**
 * How to prompt with a multi-vector token loaded by `load_textual_inversion`: diffusers 0.42 with
 * transformers 5 looks the lower-cased token up in the case-sensitive added-token table, so it never
 * expands `<SAR>` to its vectors by itself and silently uses the first one.
 */
export const spelledOutNote = (token: ResolvedToken): ReadonlyArray<string> =>
  token.vectors === 1 ? [] : [
    `${token.token} has ${token.vectors} vectors, one added token each (${token.spellings.join(", ")}); diffusers with transformers 5 ` +
    `does not expand ${token.token} after load_textual_inversion, so write all of them in prompts: "${token.spellings.join(" ")} image of …"`
  ]
