import { Effect, Layer } from "effect"
import { stat } from "node:fs/promises"
import { join } from "node:path"
import { ClipScorers, ScorerError } from "../../framework/services/scorer.ts"

/**
 * ClipScorers for every CLIP folder layout sardine reads (docs/sar-clip.md), chosen by what the folder
 * holds: the two ONNX encoders go to onnxruntime-node (adapters/onnx), a transformers CLIPModel
 * (config.json + model.safetensors, e.g. one a `clipModel` declaration trained) to tfjs. Each
 * implementation is imported on first use, so scoring with one never loads the other's runtime.
 */

export type ClipFolderLayout = "onnx" | "transformers"

const present = (folder: string, file: string) => Effect.promise(() => stat(join(folder, file)).then((s) => s.isFile(), () => false))

/** Which implementation reads `folder`; a folder holding neither layout is an error naming what is missing. */
export const clipFolderLayout = (folder: string): Effect.Effect<ClipFolderLayout, ScorerError> =>
  Effect.gen(function*() {
    if ((yield* present(folder, "image_encoder.onnx")) || (yield* present(folder, "text_encoder.onnx"))) return "onnx" as const
    if ((yield* present(folder, "config.json")) && (yield* present(folder, "model.safetensors"))) return "transformers" as const
    return yield* new ScorerError({
      file: folder,
      reason:
        "is not a CLIP model folder: it holds neither image_encoder.onnx + text_encoder.onnx nor a transformers CLIPModel (config.json + model.safetensors); see docs/sar-clip.md"
    })
  })

const implementations = {
  onnx: () => Effect.flatMap(Effect.promise(() => import("../onnx/onnx-clip-scorer.ts")), (m) => Effect.provide(ClipScorers, m.OnnxClipScorersLive)),
  transformers: () => Effect.flatMap(Effect.promise(() => import("./tfjs-clip-scorer.ts")), (m) => Effect.provide(ClipScorers, m.TfjsClipScorersLive))
} as const

/** The production ClipScorers: one `load` for every layout. */
export const ClipScorersLive = Layer.succeed(ClipScorers, {
  load: (folder) =>
    Effect.gen(function*() {
      const implementation = yield* implementations[yield* clipFolderLayout(folder)]()
      return yield* implementation.load(folder)
    })
})
