import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { clipFolderLayout } from "../../adapters/clip-scorer/clip-scorers-live.ts"

/** Which CLIP implementation a folder goes to, from the files it holds (no model is loaded). */

const folderWith = (files: Record<string, string>, links: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const folder = await mkdtemp(join(tmpdir(), "sardine-clip-layout-"))
      for (const [name, content] of Object.entries(files)) await writeFile(join(folder, name), content)
      for (const [name, target] of Object.entries(links)) await symlink(target, join(folder, name))
      return folder
    }),
    (folder) => Effect.promise(() => rm(folder, { recursive: true, force: true }))
  )

describe("CLIP folder layout", () => {
  it.scoped("ONNX encoders go to onnxruntime, config.json + model.safetensors to tfjs", () =>
    Effect.gen(function*() {
      expect(yield* clipFolderLayout(yield* folderWith({ "image_encoder.onnx": "", "text_encoder.onnx": "" }))).toBe("onnx")
      expect(yield* clipFolderLayout(yield* folderWith({ "config.json": "{}", "model.safetensors": "" }))).toBe("transformers")
    }))

  it.scoped("a folder with neither says what is missing", () =>
    Effect.gen(function*() {
      const folder = yield* folderWith({ "config.json": "{}" })
      const error = yield* Effect.flip(clipFolderLayout(folder))
      expect(error.file).toBe(folder)
      expect(error.reason).toContain("is not a CLIP model folder")
    }))

  it.scoped("an encoder file that is there but cannot be looked at (a link to itself) is named, not taken for absent", () =>
    Effect.gen(function*() {
      const folder = yield* folderWith({ "config.json": "{}", "model.safetensors": "" }, { "image_encoder.onnx": "image_encoder.onnx" })
      const error = yield* Effect.flip(clipFolderLayout(folder))
      expect(error.file).toBe(join(folder, "image_encoder.onnx"))
      expect(error.reason).toContain("ELOOP")
    }))
})
