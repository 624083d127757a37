import { Effect, type Scope } from "effect"
import { cp, mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { openSafetensors } from "../../adapters/safetensors/safetensors-reader.ts"
import { writeSafetensors, type TensorToWrite, type WritableDtype } from "../../adapters/safetensors/safetensors-writer.ts"

/** A copy of a fixture folder in a fresh temporary folder, to damage or rearrange; removed with the scope. */
export const copyOf = (folder: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const dir = await mkdtemp(join(tmpdir(), "sardine-models-"))
      await cp(folder, dir, { recursive: true })
      return dir
    }),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
  )

export interface StoredTensor {
  readonly name: string
  readonly dtype: WritableDtype
  readonly shape: ReadonlyArray<number>
  readonly data: Float32Array | Int32Array
}

/** Every tensor of a checkpoint (floats as float32, keeping the stored dtype for rewriting). */
export const readAll = (file: string): Promise<Array<StoredTensor>> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const reader = yield* openSafetensors(file)
    const out: Array<StoredTensor> = []
    for (const t of reader.header.tensors) {
      const integer = t.dtype === "I32" || t.dtype === "I64"
      out.push({
        name: t.name,
        dtype: integer ? "I32" : (t.dtype as WritableDtype),
        shape: t.shape,
        data: integer ? yield* reader.readInt32(t.name) : yield* reader.readFloat32(t.name)
      })
    }
    return out
  })))

/** Rewrites a checkpoint through `edit` (rename, drop, add or reshape tensors). */
export const rewrite = async (
  from: string,
  to: string,
  edit: (tensors: Array<StoredTensor>) => Array<TensorToWrite>
): Promise<void> => {
  const tensors = await readAll(from)
  if (from === to) await rm(from)
  await Effect.runPromise(writeSafetensors(to, edit(tensors)))
}
