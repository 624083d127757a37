import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Layer } from "effect"
import { join } from "node:path"
import { ClipScorers, ScorerError } from "../../framework/services/scorer.ts"
import { fileProblem, isNotFound } from "../../framework/files/file-errors.ts"

/**
 * ClipScorers for every CLIP folder layout sardine reads (docs/sar-clip.md), chosen by what the folder
 * holds: the two ONNX encoders go to onnxruntime-node (adapters/onnx), a transformers CLIPModel
 * (config.json + model.safetensors, e.g. one a `clipModel` declaration trained) to tfjs. Each
 * implementation is imported on first use, so scoring with one never loads the other's runtime.
 */

export type ClipFolderLayout = "onnx" | "transformers"

/** Whether the folder holds `file` as a regular file; one that cannot be looked at (no permission) is an error naming it. */
const present = (folder: string, file: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.stat(join(folder, file))).pipe(
    Effect.map((info) => info.type === "File"),
    Effect.catchIf(isNotFound, () => Effect.succeed(false)),
    Effect.mapError((error) => new ScorerError({ file: join(folder, file), reason: fileProblem(error) }))
  )

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
  }).pipe(Effect.provide(NodeFileSystem.layer))

/** The module of one implementation; failing to load it (a runtime's native library missing) is the folder's scorer error. */
const importing = <M>(folder: string, module: string, load: () => Promise<M>) =>
  Effect.tryPromise({ try: load, catch: (error) => new ScorerError({ file: folder, reason: `cannot load ${module}: ${(error as Error).message}` }) })

const implementations = {
  onnx: (folder: string) =>
    Effect.flatMap(
      importing(folder, "the ONNX scorer", () => import("../onnx/onnx-clip-scorer.ts")),
      (m) => Effect.provide(ClipScorers, m.OnnxClipScorersLive)
    ),
  transformers: (folder: string) =>
    Effect.flatMap(importing(folder, "the tfjs scorer", () => import("./tfjs-clip-scorer.ts")), (m) => Effect.provide(ClipScorers, m.TfjsClipScorersLive))
} as const

/** The production ClipScorers: one `load` for every layout. */
export const ClipScorersLive = Layer.succeed(ClipScorers, {
  load: (folder) =>
    Effect.gen(function*() {
      const implementation = yield* implementations[yield* clipFolderLayout(folder)](folder)
      return yield* implementation.load(folder)
    })
})
