import { Effect } from "effect"
import { EngineError } from "../../framework/services/engine.ts"
import { openSafetensors } from "../safetensors/safetensors-reader.ts"
import { tokenSpellings } from "../tfjs/training/learned-token.ts"

/** A textual-inversion file as the torch worker applies it: its tensor per text encoder, its token and that token's spellings. */
export interface EmbeddingFileToken {
  readonly file: string
  /** clip_l and clip_g (SDXL), or the single tensor's name. */
  readonly keys: ReadonlyArray<string>
  readonly token: string
  readonly spellings: ReadonlyArray<string>
}

const refused = (file: string, reason: string) => new EngineError({ operation: "generate", reason: `${file}: ${reason}` })

/**
 * Reads an embedding file's header by the tfjs engine's rules (adapters/tfjs/sampling/adapter-files.ts), so
 * both engines take the same files and the same token: SDXL files hold `clip_l` and `clip_g`, others one
 * tensor; the token is the one given (FILE:TOKEN), else the header's `token` metadata, else the tensor's name.
 */
export const embeddingFileToken = (file: string, token: string | undefined): Effect.Effect<EmbeddingFileToken, EngineError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const reader = yield* openSafetensors(file).pipe(Effect.mapError((e) => refused(file, e.reason)))
      const names = reader.header.tensors.map((t) => t.name)
      const keys = names.includes("clip_l") && names.includes("clip_g") ? ["clip_l", "clip_g"] : names.length === 1 ? names : undefined
      const first = keys?.[0]
      if (keys === undefined || first === undefined) {
        return yield* refused(file, `an embedding file holds clip_l and clip_g, or one tensor named after its token (it has ${names.join(", ") || "none"})`)
      }
      const name = token ?? reader.header.metadata.token ?? (keys.length === 1 && first !== "emb_params" ? first : undefined)
      if (name === undefined) return yield* refused(file, "does not say its token; name it as FILE:<token>")
      // [hidden] is one vector, [vectors, hidden] several.
      const shape = reader.header.byName.get(first)!.shape
      const vectors = shape.length === 1 ? 1 : shape[0] ?? 1
      return { file, keys, token: name, spellings: tokenSpellings(name, vectors) }
    })
  )
