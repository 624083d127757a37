import { Effect } from "effect"
import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"
import { SafetensorsError } from "./safetensors-error.ts"

/** The weight file names diffusers (`diffusion_pytorch_model`) and transformers (`model`) save. */
const BASE_NAMES = ["diffusion_pytorch_model", "model"] as const

const shardsOf = async (index: string): Promise<Array<string>> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(index, "utf8"))
  } catch (error) {
    throw new SafetensorsError({ file: index, reason: `not a readable JSON index (${(error as Error).message})` })
  }
  const map = (parsed as { weight_map?: unknown })?.weight_map
  if (typeof map !== "object" || map === null || !Object.values(map).every((f) => typeof f === "string")) {
    throw new SafetensorsError({ file: index, reason: "weight_map must map tensor names to shard file names" })
  }
  return [...new Set(Object.values(map as Record<string, string>))].sort()
}

/**
 * The safetensors files holding a component's weights, as diffusers picks them: the sharded index
 * (`<base>.safetensors.index.json`) or the single `<base>.safetensors`, with `<base>.<variant>.…` when
 * a variant (e.g. "fp16") is asked for. Without a variant, a folder holding only one safetensors file
 * uses that file.
 */
export const componentWeightFiles = (folder: string, variant?: string): Effect.Effect<Array<string>, SafetensorsError> =>
  Effect.tryPromise({
    try: async () => {
      let entries: Array<string>
      try {
        entries = await readdir(folder)
      } catch (error) {
        throw new SafetensorsError({ file: folder, reason: (error as Error).message })
      }
      const has = new Set(entries)
      const suffix = variant === undefined ? "" : `.${variant}`
      for (const base of BASE_NAMES) {
        const index = `${base}${suffix}.safetensors.index.json`
        if (has.has(index)) return (await shardsOf(join(folder, index))).map((shard) => join(folder, shard))
        const single = `${base}${suffix}.safetensors`
        if (has.has(single)) return [join(folder, single)]
      }
      const found = entries.filter((e) => e.endsWith(".safetensors"))
      if (variant === undefined && found.length === 1) return [join(folder, found[0]!)]
      const pickles = entries.filter((e) => e.endsWith(".bin") || e.endsWith(".ckpt") || e.endsWith(".pt"))
      const wanted = variant === undefined ? "" : ` for variant "${variant}"`
      throw new SafetensorsError({
        file: folder,
        reason: found.length > 1
          ? `several safetensors files and none named as diffusers expects${wanted}: ${found.join(", ")}`
          : pickles.length > 0
          ? `only pickle weights (${pickles.join(", ")}); sardine reads safetensors only`
          : `no safetensors weights${wanted}`
      })
    },
    catch: (error) => error instanceof SafetensorsError ? error : new SafetensorsError({ file: folder, reason: String(error) })
  })
