import { Effect } from "effect"
import { join } from "node:path"
import { type GeneratedSample, samplesIndexFile } from "../../framework/services/engine.ts"
import { ImageIO, ImageWriteError } from "../../framework/services/image-io.ts"
import { writeFileAtomically } from "../files/atomic-write-node.ts"

/**
 * A generate step's files, written the same way by both engines (so their outputs are alike by
 * construction): per sample a float32 TIFF of the normalised amplitude in [0, 1] and an 8-bit PNG
 * preview under `images/`, then `samples.json` (the GeneratedSample records, in generation order) last.
 */

export const IMAGES_FOLDER = "images"

/** `images/p<prompt>-s<seed>-r<replicate>`: the three numbers that make a sample. */
export const sampleStem = (promptIndex: number, seed: number, replicate: number) =>
  `${IMAGES_FOLDER}/p${String(promptIndex).padStart(3, "0")}-s${seed}-r${replicate}`

/** `<outDir>/<stem>.tif` and `.png` of a square amplitude image of `side` pixels. */
export const writeSampleImages = (outDir: string, stem: string, amplitude: Float32Array, side: number): Effect.Effect<void, ImageWriteError, ImageIO> =>
  Effect.flatMap(ImageIO, (io) => {
    const raster = { width: side, height: side, channels: 1, data: amplitude }
    return Effect.zipRight(
      io.writeFloatTiff(join(outDir, `${stem}.tif`), raster),
      io.writePng8(join(outDir, `${stem}.png`), { ...raster, data: amplitude.map((v) => v * 255) })
    )
  })

export const writeSamplesIndex = (outDir: string, samples: ReadonlyArray<GeneratedSample>): Effect.Effect<void, ImageWriteError> => {
  const index = join(outDir, samplesIndexFile)
  return writeFileAtomically(index, `${JSON.stringify(samples, null, 2)}\n`).pipe(
    Effect.mapError((error) => new ImageWriteError({ file: index, reason: error.message }))
  )
}
