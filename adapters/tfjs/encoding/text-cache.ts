import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema, type Scope } from "effect"
import { join } from "node:path"
import type { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { layersOf } from "../layers.ts"
import type { LoadError } from "../pipeline-loader.ts"
import { encodePromptSd, encodePromptSdxl, type TextEncoder } from "../prompt-encoding.ts"
import { type PreparedDataError, readPreparedIndex } from "../../../framework/steps/prepared-dataset.ts"
import { DataFolderError, readIndexFile, writeIndexFile } from "../training/index-files.ts"
import { shardedReader, shardedWriter } from "../training/sharded-tensors.ts"
import { encodedValues } from "./encoded-values.ts"
import { loadTextEncoders } from "./text-encoders.ts"

/**
 * The `encode-text` step: the frozen text encoders' conditioning for every distinct caption of the
 * prepared data, plus the empty caption (what caption dropout trains on):
 *   text.json              index: the conditioning kind, each caption's tensors
 *   text-00000.safetensors prompt embeddings [77, dim] (and SDXL's pooled embedding [projection])
 */

export const TEXT_INDEX = "text.json"

const Location = Schema.Struct({ file: Schema.String, tensor: Schema.String })

export const TextIndex = Schema.Struct({
  format: Schema.Literal("sardine-text-embeddings"),
  version: Schema.Literal(1),
  /** "sd": last hidden state of the one encoder; "sdxl": both encoders' penultimate states and the pooled projection. */
  conditioning: Schema.Literal("sd", "sdxl"),
  promptShape: Schema.Tuple(Schema.Int, Schema.Int),
  pooledShape: Schema.NullOr(Schema.Tuple(Schema.Int)),
  captions: Schema.Array(Schema.Struct({ caption: Schema.String, prompt: Location, pooled: Schema.NullOr(Location) }))
})
export type TextIndex = typeof TextIndex.Type

const BATCH = 8

export const encodeText = (
  pipelineFolder: string,
  dataDir: string,
  outDir: string,
  progress: (done: number, total: number) => Effect.Effect<void>
): Effect.Effect<void, LoadError | DataFolderError | PreparedDataError | SafetensorsError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const prepared = yield* readPreparedIndex(dataDir)
      const loaded = yield* loadTextEncoders(pipelineFolder)
      const encoders: Array<TextEncoder> = loaded.map((e) => ({ plan: e.plan, layers: layersOf(e.parameters), tokenizer: e.tokenizer }))
      const sdxl = encoders.length === 2
      const captions = [...new Set(["", ...prepared.samples.map((s) => s.caption)])]
      const writer = shardedWriter(outDir, "text")
      const entries: Array<TextIndex["captions"][number]> = []
      let promptShape: readonly [number, number] = [0, 0]
      let pooledShape: readonly [number] | null = null
      for (let start = 0; start < captions.length; start += BATCH) {
        const chunk = captions.slice(start, start + BATCH)
        const { prompt, pooled } = yield* Effect.try({
          try: () => {
            if (!sdxl) return { prompt: encodePromptSd(encoders[0]!, chunk), pooled: undefined }
            const out = encodePromptSdxl(encoders, chunk)
            return { prompt: out.promptEmbeds, pooled: out.pooledPromptEmbeds as tf.Tensor2D | undefined }
          },
          catch: (e) => new DataFolderError({ file: join(dataDir, "index.json"), reason: `a caption cannot be encoded: ${(e as Error).message}` })
        })
        promptShape = [prompt.shape[1], prompt.shape[2]]
        pooledShape = pooled === undefined ? null : [pooled.shape[1]]
        const promptData = yield* encodedValues(prompt, dataDir)
        const pooledData = pooled === undefined ? undefined : yield* encodedValues(pooled, dataDir)
        tf.dispose([prompt, ...(pooled === undefined ? [] : [pooled])])
        const promptSize = promptShape[0] * promptShape[1]
        const pooledSize = pooledShape === null ? 0 : pooledShape[0]
        for (let i = 0; i < chunk.length; i++) {
          entries.push({
            caption: chunk[i]!,
            prompt: yield* writer.add(promptShape, promptData.slice(i * promptSize, (i + 1) * promptSize)),
            pooled: pooledData === undefined || pooledShape === null
              ? null
              : yield* writer.add(pooledShape, pooledData.slice(i * pooledSize, (i + 1) * pooledSize))
          })
        }
        yield* progress(entries.length, captions.length)
      }
      yield* writer.finish
      const index: TextIndex = {
        format: "sardine-text-embeddings",
        version: 1,
        conditioning: sdxl ? "sdxl" : "sd",
        promptShape,
        pooledShape,
        captions: entries
      }
      yield* writeIndexFile(join(outDir, TEXT_INDEX), index)
    })
  )

export interface CachedConditioning {
  readonly prompt: Float32Array
  readonly pooled?: Float32Array
}

export interface TextCache {
  readonly index: TextIndex
  readonly read: (caption: string) => Effect.Effect<CachedConditioning, SafetensorsError | DataFolderError>
}

export const openTextCache = (dir: string): Effect.Effect<TextCache, DataFolderError, Scope.Scope> =>
  Effect.gen(function*() {
    const index = yield* readIndexFile(join(dir, TEXT_INDEX), TextIndex)
    const byCaption = new Map(index.captions.map((c) => [c.caption, c]))
    const reader = yield* shardedReader(dir)
    return {
      index,
      read: (caption) =>
        Effect.gen(function*() {
          const entry = byCaption.get(caption)
          if (entry === undefined) {
            return yield* new DataFolderError({ file: join(dir, TEXT_INDEX), reason: `has no embedding for the caption ${JSON.stringify(caption)}` })
          }
          const prompt = yield* reader.read(entry.prompt)
          if (entry.pooled === null) return { prompt }
          return { prompt, pooled: yield* reader.read(entry.pooled) }
        })
    }
  })
