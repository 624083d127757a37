import { Effect, type Scope } from "effect"
// Positional reads: FileSystem's File reads at one shared cursor (seek, then read), which tensors read concurrently would race on.
import { open, type FileHandle } from "node:fs/promises"
import { endianness } from "node:os"
import { bf16ToF32, f16ToF32 } from "./half-precision.ts"
import { SafetensorsError } from "./safetensors-error.ts"
import { elementCount, headerLength, parseHeader, type SafetensorsHeader, type TensorInfo } from "./safetensors-header.ts"

/** One read call moves at most this many bytes (the OS limit is just under 2 GiB). */
const CHUNK_BYTES = 1 << 28

export interface SafetensorsReader {
  readonly header: SafetensorsHeader
  /** F32, F16, BF16 or F64 tensor as float32. */
  readonly readFloat32: (name: string) => Effect.Effect<Float32Array, SafetensorsError>
  /** Integer or boolean tensor as int32 (I64 values must fit). */
  readonly readInt32: (name: string) => Effect.Effect<Int32Array, SafetensorsError>
}

const failure = (file: string, tensor?: string) => (error: unknown): SafetensorsError =>
  error instanceof SafetensorsError
    ? error
    : new SafetensorsError({ file, tensor, reason: error instanceof Error ? error.message : String(error) })

/** Fills `target` from the file at `position`, in chunks, so neither offsets nor sizes are limited to 2 GiB. */
const readExactly = async (handle: FileHandle, target: Uint8Array, position: number): Promise<void> => {
  let done = 0
  while (done < target.length) {
    const length = Math.min(CHUNK_BYTES, target.length - done)
    const { bytesRead } = await handle.read(target, done, length, position + done)
    if (bytesRead === 0) throw new Error(`file ended ${target.length - done} bytes early (truncated?)`)
    done += bytesRead
  }
}

const readHeaderFrom = async (handle: FileHandle, file: string): Promise<SafetensorsHeader> => {
  const { size } = await handle.stat()
  const prefix = new Uint8Array(8)
  if (size >= 8) await readExactly(handle, prefix, 0)
  const length = headerLength(file, prefix, size)
  const json = new Uint8Array(length)
  await readExactly(handle, json, 8)
  return parseHeader(file, json, size)
}

/**
 * The file opened for reading, closed when the scope closes. Closing a descriptor that only read
 * loses nothing, so a failure there is a defect (the descriptor was gone), not the caller's error.
 */
const openForReading = (file: string): Effect.Effect<FileHandle, SafetensorsError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => open(file, "r"), catch: failure(file) }),
    (handle) => Effect.orDie(Effect.tryPromise({ try: () => handle.close(), catch: failure(file) }))
  )

/** The header of a safetensors file, read without touching the tensor data. */
export const readSafetensorsHeader = (file: string): Effect.Effect<SafetensorsHeader, SafetensorsError> =>
  Effect.scoped(
    Effect.flatMap(openForReading(file), (handle) => Effect.tryPromise({ try: () => readHeaderFrom(handle, file), catch: failure(file) }))
  )

const info = (header: SafetensorsHeader, name: string): TensorInfo => {
  const tensor = header.byName.get(name)
  if (tensor === undefined) throw new SafetensorsError({ file: header.file, tensor: name, reason: "no such tensor in the file" })
  return tensor
}

const readFloat32From = async (handle: FileHandle, tensor: TensorInfo): Promise<Float32Array> => {
  const count = elementCount(tensor.shape)
  switch (tensor.dtype) {
    case "F32": {
      const out = new Float32Array(count)
      await readExactly(handle, new Uint8Array(out.buffer), tensor.begin)
      return out
    }
    case "F16":
    case "BF16": {
      const raw = new Uint16Array(count)
      await readExactly(handle, new Uint8Array(raw.buffer), tensor.begin)
      return tensor.dtype === "F16" ? f16ToF32(raw) : bf16ToF32(raw)
    }
    case "F64": {
      const raw = new Float64Array(count)
      await readExactly(handle, new Uint8Array(raw.buffer), tensor.begin)
      return Float32Array.from(raw)
    }
    default:
      throw new Error(`dtype ${tensor.dtype} is not a floating-point type`)
  }
}

const readInt32From = async (handle: FileHandle, tensor: TensorInfo): Promise<Int32Array> => {
  const count = elementCount(tensor.shape)
  const bytes = async <T extends ArrayBufferView>(array: T): Promise<T> => {
    await readExactly(handle, new Uint8Array(array.buffer), tensor.begin)
    return array
  }
  switch (tensor.dtype) {
    case "I32":
      return bytes(new Int32Array(count))
    case "I64": {
      const raw = await bytes(new BigInt64Array(count))
      const out = new Int32Array(count)
      for (let i = 0; i < count; i++) {
        if (raw[i]! > 2147483647n || raw[i]! < -2147483648n) throw new Error(`value ${raw[i]} at index ${i} does not fit in int32`)
        out[i] = Number(raw[i])
      }
      return out
    }
    case "I16":
      return Int32Array.from(await bytes(new Int16Array(count)))
    case "U16":
      return Int32Array.from(await bytes(new Uint16Array(count)))
    case "I8":
      return Int32Array.from(await bytes(new Int8Array(count)))
    case "U8":
    case "BOOL":
      return Int32Array.from(await bytes(new Uint8Array(count)))
    default:
      throw new Error(`dtype ${tensor.dtype} is not an integer type`)
  }
}

/**
 * Opens a safetensors file for reading tensor by tensor at their offsets: only the header is read
 * up front, so files of any size (beyond 2 GiB) are read with memory for one tensor at a time.
 * The file handle is closed when the scope closes.
 */
export const openSafetensors = (file: string): Effect.Effect<SafetensorsReader, SafetensorsError, Scope.Scope> =>
  Effect.gen(function*() {
    if (endianness() !== "LE") {
      return yield* new SafetensorsError({ file, reason: "safetensors data is little-endian; this machine is big-endian" })
    }
    const handle = yield* openForReading(file)
    const header = yield* Effect.tryPromise({ try: () => readHeaderFrom(handle, file), catch: failure(file) })
    const read = <T>(name: string, how: (handle: FileHandle, tensor: TensorInfo) => Promise<T>) =>
      Effect.tryPromise({ try: async () => how(handle, info(header, name)), catch: failure(file, name) })
    return {
      header,
      readFloat32: (name) => read(name, readFloat32From),
      readInt32: (name) => read(name, readInt32From)
    }
  })
