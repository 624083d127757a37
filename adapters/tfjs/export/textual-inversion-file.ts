import { Effect } from "effect"
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
): Effect.Effect<void, ExportError | SafetensorsError> =>
  Effect.gen(function*() {
    const token = manifest.token
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
  })
