import type { Raster } from "../../framework/services/image-io.ts"

/*
 * NumPy `.npy` arrays as rasters (format versions 1–3: magic, header length, a Python dict literal
 * with descr / fortran_order / shape, then the raw values). 2-D arrays are one band; 3-D arrays
 * are bands last (H, W, C) or first (C, H, W), whichever axis has at most 4 entries. Complex values
 * (SAR single-look complex data) become their modulus |z|: linear amplitude.
 */

/** Why an array cannot be read; `kind` as the image decoders name their problems. */
export class NpyError extends Error {
  constructor(readonly kind: "truncated" | "corrupt" | "unsupported" | "too-large", readonly reason: string) {
    super(reason)
  }
}

export interface NpyHeader {
  /** numpy's type string, e.g. "<c8", "<f4", "|u1". */
  readonly descr: string
  readonly fortranOrder: boolean
  readonly shape: ReadonlyArray<number>
  /** Byte offset of the first value. */
  readonly dataOffset: number
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]

export const readNpyHeader = (bytes: Uint8Array): NpyHeader => {
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) throw new NpyError("corrupt", "corrupt: not a .npy array (no \\x93NUMPY magic)")
  // The length check above keeps bytes 6 and 7 in range.
  const major = bytes[6]!
  if (major < 1 || major > 3) throw new NpyError("unsupported", `unsupported .npy format version ${major}.${bytes[7]!}`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const lengthBytes = major === 1 ? 2 : 4
  if (bytes.length < 8 + lengthBytes) throw new NpyError("truncated", "truncated: the .npy header is cut")
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true)
  const dataOffset = 8 + lengthBytes + headerLength
  if (bytes.length < dataOffset) throw new NpyError("truncated", `truncated: the .npy header needs ${dataOffset} bytes, the member has ${bytes.length}`)
  const header = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(bytes.subarray(8 + lengthBytes, dataOffset))
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1]
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1]
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1]
  if (descr === undefined || fortran === undefined || shape === undefined) {
    throw new NpyError("corrupt", `corrupt: the .npy header is not a descr / fortran_order / shape dict (${header.trim()})`)
  }
  const dims = shape.split(",").map((d) => d.trim()).filter((d) => d !== "").map(Number)
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw new NpyError("corrupt", `corrupt: .npy shape (${shape})`)
  return { descr, fortranOrder: fortran === "True", shape: dims, dataOffset }
}

interface ValueType {
  readonly size: number
  readonly complex: boolean
  readonly read: (view: DataView, at: number, little: boolean) => number
}

const valueTypes: Record<string, ValueType> = {
  f2: { size: 2, complex: false, read: (v, at, le) => halfToFloat(v.getUint16(at, le)) },
  f4: { size: 4, complex: false, read: (v, at, le) => v.getFloat32(at, le) },
  f8: { size: 8, complex: false, read: (v, at, le) => v.getFloat64(at, le) },
  u1: { size: 1, complex: false, read: (v, at) => v.getUint8(at) },
  u2: { size: 2, complex: false, read: (v, at, le) => v.getUint16(at, le) },
  u4: { size: 4, complex: false, read: (v, at, le) => v.getUint32(at, le) },
  i1: { size: 1, complex: false, read: (v, at) => v.getInt8(at) },
  i2: { size: 2, complex: false, read: (v, at, le) => v.getInt16(at, le) },
  i4: { size: 4, complex: false, read: (v, at, le) => v.getInt32(at, le) },
  c8: { size: 8, complex: true, read: (v, at, le) => v.getFloat32(at, le) },
  c16: { size: 16, complex: true, read: (v, at, le) => v.getFloat64(at, le) }
}

const halfToFloat = (h: number): number => {
  const exponent = (h >> 10) & 0x1f
  const fraction = h & 0x3ff
  const sign = h & 0x8000 ? -1 : 1
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024)
  if (exponent === 31) return fraction === 0 ? sign * Infinity : NaN
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024)
}

/** Height, width and bands of a header's shape, and where each value of band `c` at (y, x) sits. */
export const npyLayout = (header: NpyHeader) => {
  const { shape } = header
  const [first, second, third] = shape
  if (first !== undefined && second !== undefined && shape.length <= 3) {
    if (third === undefined) return { height: first, width: second, bands: 1, bandsFirst: false }
    if (third <= 4) return { height: first, width: second, bands: third, bandsFirst: false }
    if (first <= 4) return { height: second, width: third, bands: first, bandsFirst: true }
  }
  throw new NpyError("unsupported", `unsupported .npy shape (${shape.join(", ")}): sardine reads (H, W), (H, W, C) or (C, H, W) with at most 4 bands`)
}

export const npyValueType = (descr: string): ValueType & { readonly kind: string } => {
  const type = valueTypes[descr.slice(1)]
  if (type === undefined || !["<", ">", "|", "="].includes(descr.charAt(0))) {
    throw new NpyError("unsupported", `unsupported .npy dtype ${descr}: sardine reads float16/32/64, (u)int8/16/32 and complex64/128`)
  }
  return { ...type, kind: descr.slice(1) }
}

type Typed = Float32Array | Float64Array | Uint8Array | Uint16Array | Int16Array

/** The stored values as a typed array over the bytes, when they are little-endian and aligned (no copy). */
const typedView = (type: ValueType & { readonly kind: string }, bytes: Uint8Array, offset: number, count: number): Typed | undefined => {
  const at = bytes.byteOffset + offset
  const make: Record<string, (() => Typed) | undefined> = {
    f4: () => new Float32Array(bytes.buffer, at, count),
    c8: () => new Float32Array(bytes.buffer, at, 2 * count),
    f8: () => new Float64Array(bytes.buffer, at, count),
    c16: () => new Float64Array(bytes.buffer, at, 2 * count),
    u1: () => new Uint8Array(bytes.buffer, at, count),
    u2: () => new Uint16Array(bytes.buffer, at, count),
    i2: () => new Int16Array(bytes.buffer, at, count)
  }
  const size = type.size / (type.complex ? 2 : 1)
  return at % size === 0 ? make[type.kind]?.() : undefined
}

/** |z| of interleaved (re, im) pairs, rounded to float32. */
const modulus = (pairs: Typed, count: number): Float32Array => {
  const out = new Float32Array(count)
  for (let i = 0; i < count; i++) {
    const re = pairs[2 * i]!
    const im = pairs[2 * i + 1]!
    out[i] = Math.sqrt(re * re + im * im)
  }
  return out
}

/**
 * The array as a raster (HWC, float32): values as stored, complex values as |z|. `checkSize` sees the
 * header's size before any value is decoded (the pixel limit).
 */
export const decodeNpy = (bytes: Uint8Array, checkSize: (width: number, height: number, bands: number) => void = () => {}): Raster => {
  const header = readNpyHeader(bytes)
  const { height, width, bands, bandsFirst } = npyLayout(header)
  const type = npyValueType(header.descr)
  checkSize(width, height, bands)
  const count = height * width * bands
  const needed = header.dataOffset + count * type.size
  if (bytes.length < needed) {
    throw new NpyError("truncated", `truncated: ${header.shape.join(" × ")} ${header.descr} values need ${needed} bytes, the member has ${bytes.length}`)
  }
  const little = header.descr[0] !== ">"
  const fast = !header.fortranOrder && !bandsFirst && little ? typedView(type, bytes, header.dataOffset, count) : undefined
  if (fast !== undefined) return { width, height, channels: bands, data: type.complex ? modulus(fast, count) : Float32Array.from(fast) }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const data = new Float32Array(count)
  // Stored index of logical (y, x, c) for C or Fortran order over the stored axes.
  const dims: readonly [number, number, number] = bandsFirst ? [bands, height, width] : [height, width, bands]
  const strides: readonly [number, number, number] = header.fortranOrder ? [1, dims[0], dims[0] * dims[1]] : [dims[1] * dims[2], dims[2], 1]
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < bands; c++) {
        const index = bandsFirst ? c * strides[0] + y * strides[1] + x * strides[2] : y * strides[0] + x * strides[1] + c * strides[2]
        const at = header.dataOffset + index * type.size
        const value = type.complex
          ? Math.hypot(type.read(view, at, little), type.read(view, at + type.size / 2, little))
          : type.read(view, at, little)
        data[(y * width + x) * bands + c] = value
      }
    }
  }
  return { width, height, channels: bands, data }
}
