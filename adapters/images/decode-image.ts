import { defaultMaxPixels, type Raster, type RasterInfo, type ReadOptions } from "../../framework/services/image-io.ts"
import { DecodeFailure } from "./decode-failure.ts"
import { type ContainerFormat, describeUnsupported, hasEndMarker, sniffFormat } from "./file-signature.ts"
import { type ByteSource, type ImageHeader, readImageHeader } from "./image-header.ts"
import { checkPixelLimit } from "./pixel-limit.ts"
import { readWithSharp, sharpInfo } from "./sharp-codec.ts"
import { checkBand, readTiff, tiffInfo } from "./tiff-reader.ts"

/*
 * Every image sardine decodes comes through here, from a file or from bytes already in memory
 * (a member of an archive): format by signature → end marker → header → pixel limit → decoder.
 * A new container format adds its signature, its header reader and its decoder; the limit
 * check then applies to it unchanged.
 */

const probe = async (source: ByteSource): Promise<{ format: ContainerFormat; header: ImageHeader }> => {
  if (source.size === 0) throw new DecodeFailure("empty", "empty file (0 bytes)")
  const start = await source.read(0, 16)
  const format = sniffFormat(start)
  if (format === undefined) {
    throw new DecodeFailure("unsupported", `unsupported format: ${describeUnsupported(start)}; sardine reads PNG, JPEG and TIFF`)
  }
  if (format !== "tiff" && !hasEndMarker(format, await source.read(Math.max(0, source.size - 64), 64), source.size)) {
    const marker = format === "png" ? "IEND chunk" : "end-of-image marker"
    throw new DecodeFailure("truncated", `truncated: the ${format.toUpperCase()} file has no ${marker} (${source.size} bytes)`)
  }
  return { format, header: await readImageHeader(format, source) }
}

/** What the file holds, from its header and directories; no pixel is decoded, so no limit applies. */
export const imageInfo = async (source: ByteSource): Promise<RasterInfo> => {
  const { format } = await probe(source)
  const bytes = await source.all()
  return format === "tiff" ? tiffInfo(bytes) : sharpInfo(format, bytes)
}

const selectBand = (raster: Raster, band: number): Raster => {
  const data = new Float32Array(raster.width * raster.height)
  for (let i = 0; i < data.length; i++) data[i] = raster.data[i * raster.channels + band]!
  return { width: raster.width, height: raster.height, channels: 1, data }
}

/** Decodes an image, refusing it from its header when it is larger than `options.maxPixels`. */
export const decodeImage = async (source: ByteSource, options: ReadOptions = {}): Promise<Raster> => {
  const { format, header } = await probe(source)
  const maxPixels = options.maxPixels ?? defaultMaxPixels
  // Only the TIFF reader decodes a chosen band alone; sharp decodes every channel.
  checkPixelLimit(header, format === "tiff" && options.band !== undefined ? 1 : header.bands, maxPixels, source.size)
  const bytes = await source.all()
  if (format === "tiff") return readTiff(bytes, options.band)
  const raster = await readWithSharp(format, bytes, maxPixels)
  checkBand(options.band, raster.channels)
  return options.band === undefined ? raster : selectBand(raster, options.band)
}
