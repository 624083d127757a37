import { constants, crc32, deflateRawSync } from "node:zlib"

/*
 * Small files that declare huge images of zeros: what a hostile or broken dataset may hold.
 * They are real, valid files (any decoder would expand them); building them here costs
 * milliseconds, where compressing the zeros would take seconds: one compressed block of zeros,
 * ended by a full flush, is repeated as often as needed.
 */

/** A zlib stream of `length` zero bytes. */
export const zerosZlib = (length: number): Buffer => {
  const chunk = 1 << 22
  const block = (n: number) => deflateRawSync(Buffer.alloc(n), { level: 9, finishFlush: constants.Z_FULL_FLUSH })
  const full = block(chunk)
  const parts: Array<Buffer> = [Buffer.from([0x78, 0xda])]
  for (let done = 0; done < length; done += chunk) parts.push(length - done >= chunk ? full : block(length - done))
  // A final, empty fixed-Huffman block; then Adler-32 of n zeros: a = 1, b = n mod 65521.
  const adler = Buffer.alloc(4)
  adler.writeUInt32BE((((length % 65521) << 16) | 1) >>> 0)
  parts.push(Buffer.from([0x03, 0x00]), adler)
  return Buffer.concat(parts)
}

const pngChunk = (type: string, data: Buffer) => {
  const out = Buffer.alloc(12 + data.length)
  out.writeUInt32BE(data.length, 0)
  out.write(type, 4, "latin1")
  data.copy(out, 8)
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)) >>> 0, 8 + data.length)
  return out
}

/** An 8-bit grey PNG of zeros. */
export const pngOfZeros = (width: number, height: number): Buffer => {
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header[8] = 8 // bit depth; colour type 0 (grey), compression, filter and interlace 0
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", header),
    // Each row: filter byte 0, then the row's zeros.
    pngChunk("IDAT", zerosZlib((width + 1) * height)),
    pngChunk("IEND", Buffer.alloc(0))
  ])
}

/**
 * A little-endian 8-bit TIFF of zeros, `bands` samples per pixel, deflate-compressed: one strip,
 * or with `tile`, one tile of that side (at least the image's).
 */
export const tiffOfZeros = (width: number, height: number, options: { bands?: number; tile?: number } = {}): Buffer => {
  const { bands = 1, tile } = options
  const data = zerosZlib((tile === undefined ? width * height : tile * tile) * bands)
  const OFFSET = -1 // the pixel data's offset, filled in below
  const layout: Array<[tag: number, type: number, value: number]> = tile === undefined
    ? [[273, 4, OFFSET], [278, 4, height], [279, 4, data.length]]
    : [[322, 4, tile], [323, 4, tile], [324, 4, OFFSET], [325, 4, data.length]]
  // BitsPerSample has one value per band; more than two do not fit in the entry and follow the directory.
  const entries: Array<[tag: number, type: number, value: number]> = [
    [256, 4, width],
    [257, 4, height],
    [258, 3, 8],
    [259, 3, 8], // Adobe deflate
    [262, 3, 1], // min-is-black
    [277, 3, bands],
    ...layout
  ].sort((a, b) => a[0]! - b[0]!) as Array<[number, number, number]>
  const ifdLength = 2 + entries.length * 12 + 4
  const bitsOffset = 8 + ifdLength
  const dataOffset = bitsOffset + (bands > 2 ? 2 * bands : 0)
  const out = Buffer.alloc(dataOffset + data.length)
  out.write("II", 0, "latin1")
  out.writeUInt16LE(42, 2)
  out.writeUInt32LE(8, 4)
  out.writeUInt16LE(entries.length, 8)
  entries.forEach(([tag, type, value], i) => {
    const at = 10 + 12 * i
    out.writeUInt16LE(tag, at)
    out.writeUInt16LE(type, at + 2)
    out.writeUInt32LE(tag === 258 ? bands : 1, at + 4)
    if (tag === 258 && bands > 2) {
      out.writeUInt32LE(bitsOffset, at + 8)
      for (let b = 0; b < bands; b++) out.writeUInt16LE(8, bitsOffset + 2 * b)
    } else if (tag === 258) { for (let b = 0; b < bands; b++) out.writeUInt16LE(8, at + 8 + 2 * b) }
    else if (type === 3) out.writeUInt16LE(value, at + 8)
    else out.writeUInt32LE(value === OFFSET ? dataOffset : value, at + 8)
  })
  data.copy(out, dataOffset)
  return out
}
