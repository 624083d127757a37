import { Effect } from "effect"
import { copyFile, mkdir, readFile } from "node:fs/promises"
import { dirname, join } from "node:path"
import { ReportError } from "../framework/services/report-renderer.ts"
import { ImageIO, type Raster } from "../framework/services/image-io.ts"

/** Longest side of a grid image: enough to judge texture on screen, small enough to embed dozens. */
export const thumbnailSide = 256

/** Block average by an integer factor: every source pixel counts once. */
const shrink = (raster: Raster, factor: number): Raster => {
  const width = Math.floor(raster.width / factor)
  const height = Math.floor(raster.height / factor)
  const { channels } = raster
  const data = new Float32Array(width * height * channels)
  const area = factor * factor
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        let sum = 0
        for (let dy = 0; dy < factor; dy++) {
          const row = ((y * factor + dy) * raster.width + x * factor) * channels + c
          for (let dx = 0; dx < factor; dx++) sum += raster.data[row + dx * channels]!
        }
        data[(y * width + x) * channels + c] = sum / area
      }
    }
  }
  return { width, height, channels, data }
}

/**
 * Puts a preview PNG at `target` (under the report folder): copied as is when small, else
 * block-averaged to at most `thumbnailSide` pixels. Returns the PNG bytes, for embedding.
 */
export const thumbnail = (source: string, target: string): Effect.Effect<Uint8Array, ReportError, ImageIO> =>
  Effect.gen(function*() {
    const io = yield* ImageIO
    const failed = (what: string) => (e: { message: string }) => new ReportError({ path: source, reason: `${what}: ${e.message}` })
    const info = yield* io.info(source).pipe(Effect.mapError(failed("cannot read the preview")))
    yield* Effect.tryPromise({ try: () => mkdir(dirname(target), { recursive: true }), catch: (e) => failed("cannot create the images folder")(e as Error) })
    const side = Math.max(info.width, info.height)
    if (info.format === "png" && side <= thumbnailSide) {
      yield* Effect.tryPromise({ try: () => copyFile(source, target), catch: (e) => failed(`cannot copy to ${target}`)(e as Error) })
    } else {
      const raster = yield* io.read(source).pipe(Effect.mapError(failed("cannot decode the preview")))
      const small = shrink(raster, Math.max(1, Math.ceil(side / thumbnailSide)))
      yield* io.writePng8(target, small).pipe(Effect.mapError(failed(`cannot write ${target}`)))
    }
    return yield* Effect.tryPromise({ try: () => readFile(target), catch: (e) => failed(`cannot read ${target}`)(e as Error) })
  })

export const joinTarget = (dir: string, target: string) => join(dir, ...target.split("/"))
