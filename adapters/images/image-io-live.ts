import { readFile } from "node:fs/promises"
import { Effect, Layer } from "effect"
import {
  ImageDecodeError,
  ImageIO,
  ImageWriteError,
  type Raster,
  type RasterInfo,
  type ReadOptions
} from "../../framework/services/image-io.ts"
import { writeFileAtomically } from "./atomic-write.ts"
import { DecodeFailure } from "./decode-failure.ts"
import { describeUnsupported, sniffFormat } from "./file-signature.ts"
import { encodePng, readWithSharp, sharpInfo } from "./sharp-codec.ts"
import { checkBand, readTiff, tiffInfo } from "./tiff-reader.ts"
import { encodeFloatTiff } from "./tiff-writer.ts"

const readBytes = async (file: string): Promise<Uint8Array> => {
  try {
    return await readFile(file)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : code === "EACCES" ? "permission denied" : (error as Error).message
    throw new DecodeFailure("unreadable", `cannot read: ${why}`)
  }
}

const formatOf = (bytes: Uint8Array) => {
  if (bytes.length === 0) throw new DecodeFailure("empty", "empty file (0 bytes)")
  const format = sniffFormat(bytes)
  if (format === undefined) {
    throw new DecodeFailure("unsupported", `unsupported format: ${describeUnsupported(bytes)}; sardine reads PNG, JPEG and TIFF`)
  }
  return format
}

const decoding = <A>(file: string, run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (error) =>
      error instanceof DecodeFailure
        ? new ImageDecodeError({ file, reason: error.reason, kind: error.kind })
        : new ImageDecodeError({ file, reason: `corrupt: ${(error as Error).message}`, kind: "corrupt" })
  })

const writing = (file: string, encode: () => Promise<Uint8Array> | Uint8Array) =>
  Effect.tryPromise({
    try: async () => writeFileAtomically(file, await encode()),
    catch: (error) => new ImageWriteError({ file, reason: (error as Error).message })
  })

const info = (file: string): Effect.Effect<RasterInfo, ImageDecodeError> =>
  decoding(file, async () => {
    const bytes = await readBytes(file)
    const format = formatOf(bytes)
    return format === "tiff" ? tiffInfo(bytes) : sharpInfo(format, bytes)
  })

const read = (file: string, options: ReadOptions = {}): Effect.Effect<Raster, ImageDecodeError> =>
  decoding(file, async () => {
    const bytes = await readBytes(file)
    const format = formatOf(bytes)
    if (format === "tiff") return readTiff(bytes, options.band)
    const raster = await readWithSharp(format, bytes)
    checkBand(options.band, raster.channels)
    return options.band === undefined ? raster : selectBand(raster, options.band)
  })

const selectBand = (raster: Raster, band: number): Raster => {
  const data = new Float32Array(raster.width * raster.height)
  for (let i = 0; i < data.length; i++) data[i] = raster.data[i * raster.channels + band]
  return { width: raster.width, height: raster.height, channels: 1, data }
}

/** The real ImageIO: sharp for PNG/JPEG, geotiff.js for TIFF, atomic writes. */
export const ImageIOLive = Layer.succeed(ImageIO, {
  info,
  read,
  writeFloatTiff: (file, raster, options = {}) => writing(file, () => encodeFloatTiff(raster, options.noData)),
  writePng8: (file, raster) => writing(file, () => encodePng(raster, 8)),
  writePng16: (file, raster) => writing(file, () => encodePng(raster, 16))
})
