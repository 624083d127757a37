import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { dirname, join, resolve } from "node:path"
import { Effect } from "effect"
import { writeFolderAtomic } from "../../../framework/files/atomic-write.ts"
import type { SyntheticDataset } from "../../../framework/declaration/dataset.ts"
import { normaliseMeanStd } from "../../../framework/sar/normalisation.ts"
import { DatasetError, type SyntheticSummary } from "../../../framework/services/datasets.ts"
import { ImageIO } from "../../../framework/services/image-io.ts"
import { labelLegend } from "./scene-classes.ts"
import { generateScene } from "./scene-generator.ts"
import { isNotFound } from "../../../framework/files/file-errors.ts"

/*
 * Writes a synthetic dataset as a Hugging Face imagefolder:
 *   sar/scene-NNNNNN.tif       SAR amplitude, float32 (linear, amplitude² = σ0)
 *   previews/scene-NNNNNN.png  8-bit preview: A / (mean + 3·std) clipped, × 255
 *   labels/scene-NNNNNN.png    label map (values in synthetic.json's legend)
 *   optical/scene-NNNNNN.png   optical-like RGB of the same layout
 *   metadata.jsonl             file_name, text ("SAR image of …"), scene, conditioning_file_name, …
 *   synthetic.json             generator parameters, label legend, counts
 * Everything is written into a sibling temporary folder that is renamed into place at the end (over
 * the target when it is an empty folder).
 */

const GENERATOR = "sardine-synthetic/1"

const fail = (path: string) => (error: PlatformError) => new DatasetError({ path, reason: error.message })

/** The target may not exist yet, or be an empty folder; anything else is refused. */
const checkTarget = (fs: FileSystem.FileSystem, folder: string) =>
  fs.readDirectory(folder).pipe(
    Effect.catchIf(isNotFound, () => Effect.succeed([])),
    Effect.mapError((error) =>
      (error.cause as NodeJS.ErrnoException | undefined)?.code === "ENOTDIR"
        ? new DatasetError({ path: folder, reason: "output path exists and is not a folder" })
        : fail(folder)(error)
    ),
    Effect.filterOrFail((entries) => entries.length === 0, () => new DatasetError({ path: folder, reason: "output folder exists and is not empty" }))
  )

export const writeSyntheticDataset = (dataset: SyntheticDataset, target: string) =>
  Effect.gen(function*() {
    const io = yield* ImageIO
    const fs = yield* FileSystem.FileSystem
    const folder = resolve(target)
    yield* checkTarget(fs, folder)
    yield* fs.makeDirectory(dirname(folder), { recursive: true }).pipe(Effect.mapError(fail(folder)))
    const lines: Array<string> = []
    const kinds: Record<string, number> = {}
    const classes: Record<string, number> = {}
    const write = (partial: string) =>
      Effect.gen(function*() {
        for (let index = 0; index < dataset.n; index++) {
          const scene = generateScene(dataset, index)
          const { size } = dataset
          const sar = scene.sar!
          const files = {
            sar: `sar/${scene.name}.tif`,
            preview: `previews/${scene.name}.png`,
            labels: `labels/${scene.name}.png`,
            optical: `optical/${scene.name}.png`
          }
          yield* io.writeFloatTiff(join(partial, files.sar), { width: size, height: size, channels: 1, data: sar.amplitude })
          const preview = normaliseMeanStd(sar.amplitude).map((v) => v * 255)
          yield* io.writePng8(join(partial, files.preview), { width: size, height: size, channels: 1, data: preview })
          yield* io.writePng8(join(partial, files.labels), { width: size, height: size, channels: 1, data: Float32Array.from(scene.layout.labels) })
          yield* io.writePng8(join(partial, files.optical), { width: size, height: size, channels: 3, data: scene.optical! })
          lines.push(JSON.stringify({
            file_name: files.sar,
            text: `SAR image of ${scene.description}`,
            scene: scene.description,
            conditioning_file_name: files.labels,
            optical_file_name: files.optical,
            preview_file_name: files.preview,
            kind: scene.layout.kind,
            classes: scene.classes
          }))
          kinds[scene.layout.kind] = (kinds[scene.layout.kind] ?? 0) + 1
          for (const cls of scene.classes) classes[cls] = (classes[cls] ?? 0) + 1
        }
        const description = {
          generator: GENERATOR,
          unit: "amplitude",
          n: dataset.n,
          size: dataset.size,
          seed: dataset.seed,
          looks: dataset.looks,
          exclude: dataset.exclude,
          lookDirection: dataset.lookDirection,
          incidenceAngle: dataset.incidenceAngle,
          pixelSpacingMetres: 1,
          labels: labelLegend(),
          kinds,
          classes
        }
        yield* fs.writeFileString(join(partial, "synthetic.json"), `${JSON.stringify(description, null, 2)}\n`)
        yield* fs.writeFileString(join(partial, "metadata.jsonl"), `${lines.join("\n")}\n`)
      })
    // Interrupted or failed: the temporary folder goes, the target never appears half-written.
    yield* writeFolderAtomic(folder, write).pipe(
      Effect.mapError((error) => error._tag === "ImageWriteError" ? new DatasetError({ path: error.file, reason: error.reason }) : fail(folder)(error))
    )
    const summary: SyntheticSummary = { folder, scenes: dataset.n, kinds, classes }
    return summary
  })
