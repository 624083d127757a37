import sharp from "sharp"
import type { Raster, RasterInfo } from "../../framework/services/image-io.ts"
import { DecodeFailure } from "./decode-failure.ts"

/*
 * PNG and JPEG through sharp (libvips), after decode-image.ts checked the end marker and the pixel
 * limit. sharp converts to sRGB on output unless told otherwise, so the colourspace is set
 * explicitly to keep grey images one channel and 16-bit values intact.
 */

type Format = "png" | "jpeg"

/** `maxPixels` again as libvips' own limit, in case its reading of a header ever differs from sardine's. */
const open = (bytes: Uint8Array, maxPixels: number | false) => sharp(bytes, { failOn: "warning", limitInputPixels: maxPixels })

const describe = async (format: Format, bytes: Uint8Array) => {
  try {
    // Metadata reads the header only: no limit needed.
    const meta = await open(bytes, false).metadata()
    if (!(meta.width > 0 && meta.height > 0) || meta.channels === undefined) {
      throw new Error(`image size ${meta.width} × ${meta.height}`)
    }
    if (meta.depth !== "uchar" && meta.depth !== "ushort") {
      throw new DecodeFailure("unsupported", `unsupported ${format.toUpperCase()} sample depth: ${meta.depth}`)
    }
    return meta
  } catch (error) {
    if (error instanceof DecodeFailure) throw error
    throw new DecodeFailure("corrupt", `corrupt ${format.toUpperCase()}: ${(error as Error).message}`)
  }
}

const sampleType = (depth: string) => (depth === "ushort" ? "uint16" : "uint8")

export const sharpInfo = async (format: Format, bytes: Uint8Array): Promise<RasterInfo> => {
  const meta = await describe(format, bytes)
  return { format, width: meta.width, height: meta.height, bands: meta.channels, sampleType: sampleType(meta.depth) }
}

/** Reads all channels (grey, grey+alpha, RGB, RGBA) as stored: 0–255 or 0–65535. */
export const readWithSharp = async (format: Format, bytes: Uint8Array, maxPixels: number): Promise<Raster> => {
  const meta = await describe(format, bytes)
  const sixteen = meta.depth === "ushort"
  // libvips' grey colourspaces drop alpha, so grey+alpha is read as RGBA and reduced to (R, A).
  const grey = meta.channels === 1
  try {
    const { data, info } = await open(bytes, maxPixels)
      .toColourspace(grey ? (sixteen ? "grey16" : "b-w") : sixteen ? "rgb16" : "srgb")
      .raw({ depth: sixteen ? "ushort" : "uchar" })
      .toBuffer({ resolveWithObject: true })
    const values = Float32Array.from(
      sixteen ? new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) : data
    )
    const raster = { width: info.width, height: info.height, channels: info.channels, data: values }
    return meta.channels === 2 ? greyAlpha(raster) : raster
  } catch (error) {
    throw new DecodeFailure("corrupt", `corrupt ${format.toUpperCase()}: ${(error as Error).message}`)
  }
}

const greyAlpha = (rgba: Raster): Raster => {
  const pixels = rgba.width * rgba.height
  const data = new Float32Array(pixels * 2)
  for (let i = 0; i < pixels; i++) {
    data[2 * i] = rgba.data[i * rgba.channels]!
    data[2 * i + 1] = rgba.data[i * rgba.channels + rgba.channels - 1]!
  }
  return { width: rgba.width, height: rgba.height, channels: 2, data }
}

const quantise = (raster: Raster, bits: 8 | 16): Uint8Array | Uint16Array => {
  const max = bits === 8 ? 255 : 65535
  const out = bits === 8 ? new Uint8Array(raster.data.length) : new Uint16Array(raster.data.length)
  for (let i = 0; i < raster.data.length; i++) {
    const v = raster.data[i]!
    // NaN (no data) becomes 0 rather than an arbitrary cast.
    out[i] = v > 0 ? (v < max ? Math.round(v) : max) : 0
  }
  return out
}

export const encodePng = async (raster: Raster, bits: 8 | 16): Promise<Buffer> => {
  const { width, height, channels } = raster
  if (channels < 1 || channels > 4) throw new Error(`a PNG holds 1 to 4 channels (got ${channels})`)
  if (raster.data.length !== width * height * channels) {
    throw new Error(`raster has ${raster.data.length} values, expected ${width} × ${height} × ${channels}`)
  }
  const grey = channels <= 2
  return sharp(quantise(raster, bits), { raw: { width, height, channels: channels as 1 | 2 | 3 | 4 } })
    .toColourspace(grey ? (bits === 16 ? "grey16" : "b-w") : bits === 16 ? "rgb16" : "srgb")
    .png({ compressionLevel: 6, adaptiveFiltering: false })
    .toBuffer()
}
