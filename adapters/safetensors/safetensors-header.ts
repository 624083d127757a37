import { SafetensorsError } from "./safetensors-error.ts"

/** Bytes per element of every dtype the safetensors format defines. */
const DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8
} as const

export type Dtype = keyof typeof DTYPE_BYTES

export const isDtype = (value: unknown): value is Dtype => typeof value === "string" && Object.hasOwn(DTYPE_BYTES, value)

export const bytesPerElement = (dtype: Dtype): number => DTYPE_BYTES[dtype]

export interface TensorInfo {
  readonly name: string
  readonly dtype: Dtype
  readonly shape: ReadonlyArray<number>
  /** Absolute byte offsets in the file: [begin, end). */
  readonly begin: number
  readonly end: number
}

export interface SafetensorsHeader {
  readonly file: string
  /** Tensors in file order (by offset). */
  readonly tensors: ReadonlyArray<TensorInfo>
  readonly byName: ReadonlyMap<string, TensorInfo>
  readonly metadata: Readonly<Record<string, string>>
}

export const elementCount = (shape: ReadonlyArray<number>): number => shape.reduce((a, b) => a * b, 1)

/** The reference implementation refuses headers above 100 MB; so do we (a corrupt length is often huge). */
export const MAX_HEADER_BYTES = 100_000_000

/** Reads the 8-byte little-endian header length, checking it against the file size. */
export const headerLength = (file: string, prefix: Uint8Array, fileSize: number): number => {
  if (fileSize < 8) {
    throw new SafetensorsError({ file, reason: `file has ${fileSize} bytes, fewer than the 8-byte header length` })
  }
  const length = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true)
  if (length > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError({ file, reason: `header length ${length} exceeds ${MAX_HEADER_BYTES} bytes (not a safetensors file?)` })
  }
  if (8n + length > BigInt(fileSize)) {
    throw new SafetensorsError({ file, reason: `header length ${length} runs past the end of the ${fileSize}-byte file (truncated?)` })
  }
  return Number(length)
}

const isNonNegativeInteger = (value: unknown): value is number => typeof value === "number" && Number.isSafeInteger(value) && value >= 0

/**
 * Parses and validates the JSON header as the reference implementation does: known dtypes, integer
 * shapes, offsets that match the byte size of each tensor, and a data section covered exactly once
 * (no overlap, no gap, nothing past the end of the file).
 */
export const parseHeader = (file: string, json: Uint8Array, fileSize: number): SafetensorsHeader => {
  let parsed: unknown
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(json))
  } catch (error) {
    throw new SafetensorsError({ file, reason: `header is not valid UTF-8 JSON (${(error as Error).message})` })
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new SafetensorsError({ file, reason: "header is not a JSON object" })
  }
  const dataStart = 8 + json.length
  const dataLength = fileSize - dataStart
  let metadata: Record<string, string> = {}
  const tensors: Array<TensorInfo> = []
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry) || !Object.values(entry).every((v) => typeof v === "string")) {
        throw new SafetensorsError({ file, reason: "__metadata__ must map strings to strings" })
      }
      metadata = entry as Record<string, string>
      continue
    }
    const fail = (reason: string) => new SafetensorsError({ file, tensor: name, reason })
    if (typeof entry !== "object" || entry === null) throw fail("header entry is not an object")
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>
    if (!isDtype(dtype)) throw fail(`unknown dtype ${JSON.stringify(dtype)}`)
    if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) throw fail(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`)
    const [begin, end] = Array.isArray(offsets) ? offsets : []
    if (!Array.isArray(offsets) || offsets.length !== 2 || !isNonNegativeInteger(begin) || !isNonNegativeInteger(end) || begin > end) {
      throw fail(`data_offsets ${JSON.stringify(offsets)} is not [begin, end] with begin <= end`)
    }
    const expected = elementCount(shape) * bytesPerElement(dtype)
    if (end - begin !== expected) {
      throw fail(`data_offsets ${JSON.stringify(offsets)} span ${end - begin} bytes, but ${dtype} ${JSON.stringify(shape)} needs ${expected}`)
    }
    tensors.push({ name, dtype, shape, begin: dataStart + begin, end: dataStart + end })
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end)
  let covered = dataStart
  let previous: TensorInfo | undefined
  for (const tensor of tensors) {
    if (tensor.begin < covered) {
      throw new SafetensorsError({ file, tensor: tensor.name, reason: `data overlaps tensor "${previous?.name}"` })
    }
    if (tensor.begin > covered) {
      throw new SafetensorsError({ file, tensor: tensor.name, reason: `${tensor.begin - covered} bytes before it belong to no tensor` })
    }
    if (tensor.end > fileSize) {
      throw new SafetensorsError({
        file,
        tensor: tensor.name,
        reason: `data ends at byte ${tensor.end} but the file has ${fileSize} bytes (truncated?)`
      })
    }
    covered = tensor.end
    previous = tensor
  }
  if (covered !== fileSize) {
    throw new SafetensorsError({ file, reason: `the last ${fileSize - covered} of ${dataLength} data bytes belong to no tensor` })
  }
  return { file, tensors, byName: new Map(tensors.map((t) => [t.name, t])), metadata }
}
