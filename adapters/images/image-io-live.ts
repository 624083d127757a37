import { Effect, Layer } from "effect"
import { ImageDecodeError, ImageIO, ImageWriteError, type Raster, type RasterInfo, type ReadOptions } from "../../framework/services/image-io.ts"
import { writeFileAtomically } from "../files/atomic-write-node.ts"
import { DecodeFailure } from "./decode-failure.ts"
import { decodeImage, imageInfo } from "./decode-image.ts"
import { withFileSource } from "./image-header.ts"
import { encodePng } from "./sharp-codec.ts"
import { encodeFloatTiff } from "./tiff-writer.ts"

const decoding = <A>(file: string, run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (error) =>
      error instanceof DecodeFailure
        ? new ImageDecodeError({ file, reason: error.reason, kind: error.kind })
        : new ImageDecodeError({ file, reason: `corrupt: ${(error as Error).message}`, kind: "corrupt" })
  })

const writing = (file: string, encode: () => Promise<Uint8Array> | Uint8Array) =>
  Effect.tryPromise({ try: async () => encode(), catch: (error) => error as Error }).pipe(
    Effect.flatMap((bytes) => writeFileAtomically(file, bytes)),
    Effect.mapError((error) => new ImageWriteError({ file, reason: error.message }))
  )

const info = (file: string): Effect.Effect<RasterInfo, ImageDecodeError> => decoding(file, () => withFileSource(file, imageInfo))

const read = (file: string, options: ReadOptions = {}): Effect.Effect<Raster, ImageDecodeError> =>
  decoding(file, () => withFileSource(file, (source) => decodeImage(source, options)))

/** The real ImageIO: sharp for PNG/JPEG, geotiff.js for TIFF, every read through the pixel limit, atomic writes. */
export const ImageIOLive = Layer.succeed(ImageIO, {
  info,
  read,
  writeFloatTiff: (file, raster, options = {}) => writing(file, () => encodeFloatTiff(raster, options.noData)),
  writePng8: (file, raster) => writing(file, () => encodePng(raster, 8)),
  writePng16: (file, raster) => writing(file, () => encodePng(raster, 16))
})
