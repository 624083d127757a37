// Called from the async decoders (not Effect code), reading ranges at offsets as the header parsers ask.
import { open, stat } from "node:fs/promises"
import { DecodeFailure } from "./decode-failure.ts"
import type { ContainerFormat } from "./file-signature.ts"

/*
 * Image sizes read from the container's header alone (PNG IHDR, JPEG frame header, TIFF first
 * image directory), so the pixel limit is checked before a decoder allocates anything: a
 * 875 KB PNG may declare 30000 × 30000 pixels.
 */

/** An image's bytes, read on demand: a file is probed without being read whole. */
export interface ByteSource {
  /** Length in bytes. */
  readonly size: number
  /** Up to `length` bytes from `offset` (fewer at the end). */
  readonly read: (offset: number, length: number) => Promise<Uint8Array>
  /** Every byte. */
  readonly all: () => Promise<Uint8Array>
}

export const bytesSource = (bytes: Uint8Array): ByteSource => ({
  size: bytes.length,
  read: async (offset, length) => bytes.subarray(offset, Math.min(bytes.length, offset + length)),
  all: async () => bytes
})

const cannotRead = (error: unknown) => {
  const code = (error as NodeJS.ErrnoException).code
  const why = code === "ENOENT"
    ? "no such file"
    : code === "EISDIR"
    ? "is a directory"
    : code === "EACCES"
    ? "permission denied"
    : (error as Error).message
  return new DecodeFailure("unreadable", `cannot read: ${why}`)
}

/**
 * Runs `use` on the open file, closing it afterwards; open and read errors become "unreadable".
 * Only regular files are opened: opening a FIFO named like an image would wait forever.
 */
export const withFileSource = async <A>(file: string, use: (source: ByteSource) => Promise<A>): Promise<A> => {
  const kind = await stat(file).catch((error) => Promise.reject(cannotRead(error)))
  if (kind.isDirectory()) throw new DecodeFailure("unreadable", "cannot read: is a directory")
  if (!kind.isFile()) throw new DecodeFailure("unreadable", "cannot read: not a regular file (a pipe, socket or device)")
  const handle = await open(file, "r").catch((error) => Promise.reject(cannotRead(error)))
  try {
    const stats = await handle.stat()
    const guarded = <B>(read: () => Promise<B>) => read().catch((error) => Promise.reject(error instanceof DecodeFailure ? error : cannotRead(error)))
    const source: ByteSource = {
      size: stats.size,
      read: (offset, length) =>
        guarded(async () => {
          const buffer = Buffer.alloc(Math.max(0, Math.min(length, stats.size - offset)))
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset)
          return buffer.subarray(0, bytesRead)
        }),
      all: () => guarded(() => handle.readFile())
    }
    return await use(source)
  } finally {
    await handle.close()
  }
}

/** What the pixel limit needs to know, from the header alone. */
export interface ImageHeader {
  readonly width: number
  readonly height: number
  /** Samples per pixel the file stores. */
  readonly bands: number
  /** A tiled TIFF's tile size: each tile is decoded whole, however small the image. */
  readonly tile?: { readonly width: number; readonly height: number }
}

/** `length` bytes at `offset`, or the file's truncation, named. */
const need = async (source: ByteSource, offset: number, length: number, what: string): Promise<Uint8Array> => {
  const bytes = offset + length <= source.size ? await source.read(offset, length) : new Uint8Array(0)
  if (bytes.length < length) {
    throw new DecodeFailure("truncated", `truncated: the file ends inside the ${what} (${source.size} bytes)`)
  }
  return bytes
}

const viewOf = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)

const pngBands: Record<number, number> = { 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 }

const pngHeader = async (source: ByteSource): Promise<ImageHeader> => {
  // Signature (8), then the IHDR chunk: length (4), "IHDR", width, height, depth, colour type, …
  const chunk = await need(source, 8, 25, "PNG header")
  if (String.fromCharCode(...chunk.subarray(4, 8)) !== "IHDR") {
    throw new DecodeFailure("corrupt", "corrupt PNG: the first chunk is not IHDR")
  }
  const view = viewOf(chunk)
  return { width: view.getUint32(8), height: view.getUint32(12), bands: pngBands[chunk[17]!] ?? 4 }
}

/** Start-of-frame markers (SOF0–SOF15); C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames. */
const isFrameMarker = (code: number) => code >= 0xc0 && code <= 0xcf && code !== 0xc4 && code !== 0xc8 && code !== 0xcc

const jpegHeader = async (source: ByteSource): Promise<ImageHeader> => {
  let at = 2
  for (;;) {
    const marker = await need(source, at, 2, "JPEG markers before the frame header")
    if (marker[0] !== 0xff) throw new DecodeFailure("corrupt", `corrupt JPEG: no marker at byte ${at}`)
    const code = marker[1]!
    if (code === 0xff) {
      at += 1 // fill byte
      continue
    }
    if (code === 0x01 || (code >= 0xd0 && code <= 0xd7)) {
      at += 2 // markers without a length
      continue
    }
    if (code === 0xd9 || code === 0xda) {
      throw new DecodeFailure("corrupt", "corrupt JPEG: the image data starts before any frame header (SOF)")
    }
    const length = viewOf(await need(source, at + 2, 2, "JPEG segment length")).getUint16(0)
    if (length < 2) throw new DecodeFailure("corrupt", `corrupt JPEG: segment length ${length} at byte ${at}`)
    if (isFrameMarker(code)) {
      // Length (2), precision (1), height (2), width (2), components (1).
      const frame = viewOf(await need(source, at + 4, 6, "JPEG frame header"))
      return { height: frame.getUint16(1), width: frame.getUint16(3), bands: frame.getUint8(5) }
    }
    at += 2 + length
  }
}

const SHORT = 3
const LONG = 4
const LONG8 = 16

const tiffHeader = async (source: ByteSource): Promise<ImageHeader> => {
  const start = await need(source, 0, 4, "8-byte TIFF header")
  const little = start[0] === 0x49
  const big = viewOf(start).getUint16(2, little) === 43
  const headerLength = big ? 16 : 8
  const header = viewOf(await need(source, 0, headerLength, `${headerLength}-byte TIFF header`))
  const ifd = big ? Number(header.getBigUint64(8, little)) : header.getUint32(4, little)
  if (ifd < headerLength) {
    throw new DecodeFailure("corrupt", `corrupt TIFF: the image directory offset ${ifd} points inside the header`)
  }
  const countLength = big ? 8 : 2
  if (ifd + countLength > source.size) {
    throw new DecodeFailure("truncated", `truncated: the image directory starts at byte ${ifd} but the file has only ${source.size} bytes`)
  }
  const countView = viewOf(await source.read(ifd, countLength))
  const count = big ? Number(countView.getBigUint64(0, little)) : countView.getUint16(0, little)
  const entryLength = big ? 20 : 12
  const end = ifd + countLength + count * entryLength
  if (end > source.size) {
    throw new DecodeFailure(
      "truncated",
      `truncated: the image directory (${count} entries) runs to byte ${end} but the file has only ${source.size} bytes`
    )
  }
  const entries = viewOf(await source.read(ifd + countLength, count * entryLength))
  const tags = new Map<number, number>()
  for (let i = 0; i < count; i++) {
    const at = i * entryLength
    const tag = entries.getUint16(at, little)
    if (tag !== 256 && tag !== 257 && tag !== 277 && tag !== 322 && tag !== 323) continue
    const type = entries.getUint16(at + 2, little)
    const value = at + (big ? 12 : 8)
    if (type === SHORT) tags.set(tag, entries.getUint16(value, little))
    else if (type === LONG) tags.set(tag, entries.getUint32(value, little))
    else if (type === LONG8 && big) tags.set(tag, Number(entries.getBigUint64(value, little)))
    else throw new DecodeFailure("corrupt", `corrupt TIFF: tag ${tag} has type ${type}, not an integer`)
  }
  const width = tags.get(256)
  const height = tags.get(257)
  if (width === undefined || height === undefined) {
    throw new DecodeFailure("corrupt", "corrupt TIFF: the first image directory has no ImageWidth or ImageLength")
  }
  const tileWidth = tags.get(322)
  const tileHeight = tags.get(323)
  const tile = tileWidth !== undefined && tileHeight !== undefined ? { tile: { width: tileWidth, height: tileHeight } } : {}
  return { width, height, bands: tags.get(277) ?? 1, ...tile }
}

/** One header reader per container format; a new format does not compile without one. */
const headerReaders: Record<ContainerFormat, (source: ByteSource) => Promise<ImageHeader>> = {
  png: pngHeader,
  jpeg: jpegHeader,
  tiff: tiffHeader
}

export const readImageHeader = (format: ContainerFormat, source: ByteSource): Promise<ImageHeader> => headerReaders[format](source)
