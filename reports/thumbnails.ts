import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import { dirname, join } from "node:path"
import type { PlatformError } from "@effect/platform/Error"
import { fileProblem } from "../framework/files/file-errors.ts"
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
export const thumbnail = (source: string, target: string): Effect.Effect<Uint8Array, ReportError, ImageIO | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const io = yield* ImageIO
    const fs = yield* FileSystem.FileSystem
    const failed = (what: string) => (e: { message: string }) => new ReportError({ path: source, reason: `${what}: ${e.message}` })
    const fileFailed = (what: string) => (e: PlatformError) => failed(what)({ message: fileProblem(e) })
    const info = yield* io.info(source).pipe(Effect.mapError(failed("cannot read the preview")))
    yield* fs.makeDirectory(dirname(target), { recursive: true }).pipe(Effect.mapError(fileFailed("cannot create the images folder")))
    const side = Math.max(info.width, info.height)
    if (info.format === "png" && side <= thumbnailSide) {
      yield* fs.copyFile(source, target).pipe(Effect.mapError(fileFailed(`cannot copy to ${target}`)))
    } else {
      const raster = yield* io.read(source).pipe(Effect.mapError(failed("cannot decode the preview")))
      const small = shrink(raster, Math.max(1, Math.ceil(side / thumbnailSide)))
      yield* io.writePng8(target, small).pipe(Effect.mapError(failed(`cannot write ${target}`)))
    }
    return yield* fs.readFile(target).pipe(Effect.mapError(fileFailed(`cannot read ${target}`)))
  })

export const joinTarget = (dir: string, target: string) => join(dir, ...target.split("/"))
