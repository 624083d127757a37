import type { Raster } from "../../framework/services/image-io.ts"

/*
 * A minimal baseline TIFF writer for float32 rasters: little-endian, uncompressed, one strip,
 * pixel-interleaved. Readable by GDAL, tifffile, geotiff.js and libtiff; optional GDAL_NODATA tag.
 */

const SHORT = 3
const LONG = 4
const ASCII = 2

interface Entry {
  readonly tag: number
  readonly type: number
  readonly values: ReadonlyArray<number> | string
}

const typeSize = (type: number) => (type === SHORT ? 2 : type === LONG ? 4 : 1)

export const encodeFloatTiff = (raster: Raster, noData?: number): Buffer => {
  const { width, height, channels, data } = raster
  if (data.length !== width * height * channels) {
    throw new Error(`raster has ${data.length} values, expected ${width} × ${height} × ${channels}`)
  }
  const pixelBytes = data.length * 4
  if (pixelBytes > 0xffffffff - 4096) throw new Error("raster too large for a classic TIFF (4 GiB)")
  const rgb = channels === 3
  const entries: Array<Entry> = [
    { tag: 256, type: LONG, values: [width] },
    { tag: 257, type: LONG, values: [height] },
    { tag: 258, type: SHORT, values: Array(channels).fill(32) },
    { tag: 259, type: SHORT, values: [1] },
    // 1 = min-is-black; 2 = RGB. Extra channels beyond the photometric ones are "unspecified".
    { tag: 262, type: SHORT, values: [rgb ? 2 : 1] },
    { tag: 273, type: LONG, values: [0] },
    { tag: 277, type: SHORT, values: [channels] },
    { tag: 278, type: LONG, values: [height] },
    { tag: 279, type: LONG, values: [pixelBytes] },
    { tag: 284, type: SHORT, values: [1] },
    ...(channels > 1 && !rgb ? [{ tag: 338, type: SHORT, values: Array(channels - 1).fill(0) }] : []),
    { tag: 339, type: SHORT, values: Array(channels).fill(3) },
    ...(noData !== undefined ? [{ tag: 42113, type: ASCII, values: `${Number.isNaN(noData) ? "nan" : noData}\0` }] : [])
  ]
  const ifdOffset = 8
  const ifdLength = 2 + entries.length * 12 + 4
  // Values longer than 4 bytes go after the directory, word-aligned.
  let extraOffset = ifdOffset + ifdLength
  const placed = entries.map((entry) => {
    const length = entry.values.length * typeSize(entry.type)
    if (length <= 4) return { entry, at: -1 }
    const at = extraOffset
    extraOffset += length + (length % 2)
    return { entry, at }
  })
  const dataOffset = extraOffset + ((4 - (extraOffset % 4)) % 4)
  const out = Buffer.alloc(dataOffset + pixelBytes)
  out.write("II", 0, "latin1")
  out.writeUInt16LE(42, 2)
  out.writeUInt32LE(ifdOffset, 4)
  out.writeUInt16LE(entries.length, ifdOffset)
  const writeValues = (entry: Entry, at: number) => {
    if (typeof entry.values === "string") out.write(entry.values, at, "latin1")
    else entry.values.forEach((v, i) => (entry.type === SHORT ? out.writeUInt16LE(v, at + 2 * i) : out.writeUInt32LE(v, at + 4 * i)))
  }
  placed.forEach(({ entry, at }, i) => {
    const p = ifdOffset + 2 + i * 12
    const entryWithOffset = entry.tag === 273 ? { ...entry, values: [dataOffset] } : entry
    out.writeUInt16LE(entry.tag, p)
    out.writeUInt16LE(entry.type, p + 2)
    out.writeUInt32LE(entry.values.length, p + 4)
    if (at < 0) writeValues(entryWithOffset, p + 8)
    else {
      out.writeUInt32LE(at, p + 8)
      writeValues(entryWithOffset, at)
    }
  })
  out.writeUInt32LE(0, ifdOffset + ifdLength - 4)
  // Float32Array memory is little-endian on every platform Node runs on, as declared by "II".
  Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(out, dataOffset)
  return out
}
