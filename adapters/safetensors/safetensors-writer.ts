import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect } from "effect"
import { dirname } from "node:path"
import { writeFileAtomicWith } from "../../framework/files/atomic-write.ts"
import { f32ToBf16, f32ToF16 } from "./half-precision.ts"
import { SafetensorsError } from "./safetensors-error.ts"
import { bytesPerElement, elementCount } from "./safetensors-header.ts"

export type WritableDtype = "F32" | "F16" | "BF16" | "I32"

export interface TensorToWrite {
  readonly name: string
  readonly dtype: WritableDtype
  /** Row-major shape, as the reading framework expects it (torch layout for diffusers checkpoints). */
  readonly shape: ReadonlyArray<number>
  /**
   * The values (float for F32/F16/BF16, int for I32). A function is called only when its tensor is
   * written, so a multi-gigabyte file never has to sit in memory at once.
   */
  readonly data: Float32Array | Int32Array | (() => Float32Array | Int32Array)
}

const encode = (tensor: TensorToWrite, values: Float32Array | Int32Array): Uint8Array => {
  const asBytes = (view: ArrayBufferView) => new Uint8Array(view.buffer, view.byteOffset, view.byteLength)
  if (tensor.dtype === "I32") {
    if (!(values instanceof Int32Array)) throw new Error("I32 tensors take an Int32Array")
    return asBytes(values)
  }
  if (!(values instanceof Float32Array)) throw new Error(`${tensor.dtype} tensors take a Float32Array`)
  if (tensor.dtype === "F32") return asBytes(values)
  return asBytes(tensor.dtype === "F16" ? f32ToF16(values) : f32ToBf16(values))
}

/** The JSON header, padded with spaces to a multiple of 8 bytes as the reference writer does. */
const headerBytes = (tensors: ReadonlyArray<TensorToWrite>, metadata: Readonly<Record<string, string>> | undefined): Uint8Array => {
  const header: Record<string, unknown> = {}
  if (metadata !== undefined) header.__metadata__ = metadata
  let offset = 0
  for (const t of tensors) {
    const size = elementCount(t.shape) * bytesPerElement(t.dtype)
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] }
    offset += size
  }
  const json = new TextEncoder().encode(JSON.stringify(header))
  const padded = Math.ceil(json.length / 8) * 8
  const out = new Uint8Array(8 + padded).fill(0x20, 8)
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true)
  out.set(json, 8)
  return out
}

/**
 * Writes a safetensors file tensor by tensor to a temporary name next to `file`, then renames it,
 * so an interrupted write never leaves a file that looks finished.
 */
export const writeSafetensors = (
  file: string,
  tensors: ReadonlyArray<TensorToWrite>,
  metadata?: Readonly<Record<string, string>>
): Effect.Effect<void, SafetensorsError> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const seen = new Set<string>()
    for (const t of tensors) {
      if (seen.has(t.name)) return yield* new SafetensorsError({ file, tensor: t.name, reason: "appears twice" })
      if (t.name === "__metadata__") return yield* new SafetensorsError({ file, tensor: t.name, reason: "is a reserved name" })
      seen.add(t.name)
    }
    const failure = (error: { readonly message: string }) => new SafetensorsError({ file, reason: error.message })
    const header = yield* Effect.try({ try: () => headerBytes(tensors, metadata), catch: (error) => failure(error as Error) })
    yield* fs.makeDirectory(dirname(file), { recursive: true }).pipe(Effect.mapError(failure))
    yield* writeFileAtomicWith(file, (temporary) =>
      Effect.scoped(Effect.gen(function*() {
        const handle = yield* fs.open(temporary, { flag: "wx" })
        yield* handle.writeAll(header)
        for (const t of tensors) {
          const values = typeof t.data === "function" ? t.data() : t.data
          if (values.length !== elementCount(t.shape)) {
            return yield* new SafetensorsError({ file, tensor: t.name, reason: `has ${values.length} values for shape ${JSON.stringify(t.shape)}` })
          }
          const bytes = yield* Effect.try({
            try: () => encode(t, values),
            catch: (error) => new SafetensorsError({ file, tensor: t.name, reason: (error as Error).message })
          })
          yield* handle.writeAll(bytes)
        }
      }))).pipe(Effect.mapError((error) => error._tag === "SafetensorsError" ? error : failure(error)))
  }).pipe(Effect.provide(NodeFileSystem.layer))
