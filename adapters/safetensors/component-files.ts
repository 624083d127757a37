import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect } from "effect"
import { join } from "node:path"
import { fileProblem } from "../../framework/files/file-errors.ts"
import { SafetensorsError } from "./safetensors-error.ts"

/** The weight file names diffusers (`diffusion_pytorch_model`) and transformers (`model`) save. */
const BASE_NAMES = ["diffusion_pytorch_model", "model"] as const

const shardsOf = (fs: FileSystem.FileSystem, index: string): Effect.Effect<Array<string>, SafetensorsError> =>
  Effect.gen(function*() {
    const notIndex = (reason: string) => new SafetensorsError({ file: index, reason: `not a readable JSON index (${reason})` })
    const text = yield* fs.readFileString(index).pipe(Effect.mapError((error) => notIndex(fileProblem(error))))
    const parsed = yield* Effect.try({ try: (): unknown => JSON.parse(text), catch: (error) => notIndex((error as Error).message) })
    const map = (parsed as { weight_map?: unknown })?.weight_map
    if (typeof map !== "object" || map === null || !Object.values(map).every((f) => typeof f === "string")) {
      return yield* new SafetensorsError({ file: index, reason: "weight_map must map tensor names to shard file names" })
    }
    return [...new Set(Object.values(map as Record<string, string>))].sort()
  })

/**
 * The safetensors files holding a component's weights, as diffusers picks them: the sharded index
 * (`<base>.safetensors.index.json`) or the single `<base>.safetensors`, with `<base>.<variant>.…` when
 * a variant (e.g. "fp16") is asked for. Without a variant, a folder holding only one safetensors file
 * uses that file.
 */
export const componentWeightFiles = (folder: string, variant?: string): Effect.Effect<Array<string>, SafetensorsError> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const entries = yield* fs.readDirectory(folder).pipe(Effect.mapError((error) => new SafetensorsError({ file: folder, reason: fileProblem(error) })))
    const has = new Set(entries)
    const suffix = variant === undefined ? "" : `.${variant}`
    for (const base of BASE_NAMES) {
      const index = `${base}${suffix}.safetensors.index.json`
      if (has.has(index)) return (yield* shardsOf(fs, join(folder, index))).map((shard) => join(folder, shard))
      const single = `${base}${suffix}.safetensors`
      if (has.has(single)) return [join(folder, single)]
    }
    const found = entries.filter((e) => e.endsWith(".safetensors"))
    if (variant === undefined && found.length === 1) return [join(folder, found[0]!)]
    const pickles = entries.filter((e) => e.endsWith(".bin") || e.endsWith(".ckpt") || e.endsWith(".pt"))
    const wanted = variant === undefined ? "" : ` for variant "${variant}"`
    return yield* new SafetensorsError({
      file: folder,
      reason: found.length > 1
        ? `several safetensors files and none named as diffusers expects${wanted}: ${found.join(", ")}`
        : pickles.length > 0
        ? `only pickle weights (${pickles.join(", ")}); sardine reads safetensors only`
        : `no safetensors weights${wanted}`
    })
  }).pipe(Effect.provide(NodeFileSystem.layer))
