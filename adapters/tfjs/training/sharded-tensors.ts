import { Effect, Scope } from "effect"
import { join } from "node:path"
import type { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { openSafetensors, type SafetensorsReader } from "../../safetensors/safetensors-reader.ts"
import { writeSafetensors, type TensorToWrite } from "../../safetensors/safetensors-writer.ts"

/**
 * Many small float32 tensors (prepared images, cached latents, cached text embeddings) stored in
 * safetensors shards of bounded size, each tensor found again by (file, tensor). A dataset of any
 * size is written and read with memory for one shard being written and one tensor being read.
 */

/** Where a stored tensor is: a shard file name (relative to the folder) and the tensor's name in it. */
export interface TensorLocation {
  readonly file: string
  readonly tensor: string
}

/** Shards close at this many bytes (the last tensor may overshoot it). */
const SHARD_BYTES = 64 << 20

export interface ShardedWriter {
  /** Queues a tensor; its shard is written when full or at `finish`. */
  readonly add: (shape: ReadonlyArray<number>, data: Float32Array) => Effect.Effect<TensorLocation, SafetensorsError>
  /** Writes the last, partial shard. */
  readonly finish: Effect.Effect<void, SafetensorsError>
}

/** A writer of `<prefix>-00000.safetensors`, `<prefix>-00001.safetensors`, … in `folder` (each written atomically). */
export const shardedWriter = (folder: string, prefix: string): ShardedWriter => {
  let pending: Array<TensorToWrite> = []
  let bytes = 0
  let shard = 0
  const fileName = () => `${prefix}-${String(shard).padStart(5, "0")}.safetensors`
  const flush = Effect.suspend(() => {
    if (pending.length === 0) return Effect.void
    const tensors = pending
    const file = fileName()
    pending = []
    bytes = 0
    shard++
    return writeSafetensors(join(folder, file), tensors, { format: "sardine" })
  })
  return {
    add: (shape, data) =>
      Effect.gen(function*() {
        const location = { file: fileName(), tensor: String(pending.length) }
        pending.push({ name: location.tensor, dtype: "F32", shape, data })
        bytes += data.byteLength
        if (bytes >= SHARD_BYTES) yield* flush
        return location
      }),
    finish: flush
  }
}

export interface ShardedReader {
  readonly read: (location: TensorLocation) => Effect.Effect<Float32Array, SafetensorsError>
}

/** Reads tensors of the shards in `folder`, opening each shard once; files close with the scope. */
export const shardedReader = (folder: string): Effect.Effect<ShardedReader, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const open = new Map<string, SafetensorsReader>()
    const readerOf = (file: string) =>
      Effect.suspend(() => {
        const known = open.get(file)
        if (known !== undefined) return Effect.succeed(known)
        return openSafetensors(join(folder, file)).pipe(
          Scope.extend(scope),
          Effect.tap((reader) => Effect.sync(() => open.set(file, reader)))
        )
      })
    return {
      read: (location) => readerOf(location.file).pipe(Effect.flatMap((reader) => reader.readFloat32(location.tensor)))
    }
  })
