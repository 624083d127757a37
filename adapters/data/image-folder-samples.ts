import { stat } from "node:fs/promises"
import { join, resolve } from "node:path"
import { Effect, Stream } from "effect"
import type { ImageFolderDataset } from "../../framework/declaration/dataset.ts"
import {
  combineMoments,
  emptyMoments,
  meanStdOf,
  momentsOf,
  normalise,
  toTrainingRange,
  validityMask
} from "../../framework/sar/normalisation.ts"
import { toAmplitude } from "../../framework/sar/units.ts"
import {
  DatasetError,
  DatasetFileError,
  type DatasetItem,
  type PrepareOptions,
  type SkippedFile,
  type TrainingSample
} from "../../framework/services/datasets.ts"
import { ImageIO, type Raster } from "../../framework/services/image-io.ts"
import { applyCaptionTemplate, checkTemplate } from "./caption-template.ts"
import { listImageFiles, METADATA_FILE, type MetadataEntry, readMetadata } from "./metadata-jsonl.ts"
import { cutWindow, planWindows } from "./sample-windows.ts"
import { hashString } from "./seeded-random.ts"
import { singleBand } from "./single-band.ts"

/*
 * Training samples from an imagefolder, one file at a time: decode → one band → linear amplitude
 * → no-data mask → declared normalisation (per file) → crops/tiles and flips → [-1, 1].
 */

type Io = typeof ImageIO.Service

export const resolveFolder = (path: string, root?: string) =>
  Effect.gen(function* () {
    const folder = resolve(root ?? process.cwd(), path)
    const info = yield* Effect.tryPromise({
      try: () => stat(folder),
      catch: () => new DatasetError({ path: folder, reason: "no such folder" })
    })
    if (!info.isDirectory()) return yield* new DatasetError({ path: folder, reason: "not a folder" })
    return folder
  })

const problem = (file: string, kind: string, reason: string): SkippedFile => ({ file, kind, reason })

/** Linear amplitude of one file's chosen band, with its validity mask, or the file's problem. */
const amplitudeOf = (io: Io, dataset: ImageFolderDataset, file: string) =>
  io.read(file).pipe(
    Effect.mapError((error) => problem(file, error.kind ?? "corrupt", error.reason)),
    Effect.flatMap((raster) => {
      const band = singleBand(raster, dataset.band)
      if (typeof band === "string") return Effect.fail(problem(file, "bands", band))
      const noData = dataset.noData ?? raster.noData
      const valid = validityMask(band, noData)
      return Effect.succeed({ raster, amplitude: toAmplitude(band, dataset.unit), valid })
    })
  )

/** Mean and population std of the amplitude over every readable file (first pass for "dataset" statistics). */
const datasetStatistics = (io: Io, dataset: ImageFolderDataset, files: ReadonlyArray<string>) =>
  Effect.reduce(files, emptyMoments, (moments, file) =>
    amplitudeOf(io, dataset, file).pipe(
      Effect.map(({ amplitude, valid }) => combineMoments(moments, momentsOf(amplitude, valid))),
      // Bad files are reported by the second pass, where onError decides.
      Effect.orElseSucceed(() => moments)
    )).pipe(Effect.map(meanStdOf))

const conditioningWindows = (io: Io, file: string, image: Raster) =>
  io.read(file).pipe(
    Effect.mapError((error) => problem(file, "conditioning", `conditioning image: ${error.reason}`)),
    Effect.flatMap((raster) =>
      raster.width === image.width && raster.height === image.height
        ? Effect.succeed(raster)
        : Effect.fail(
          problem(
            file,
            "conditioning",
            `conditioning image is ${raster.width} × ${raster.height}, the image is ${image.width} × ${image.height}`
          )
        )
    )
  )

const samplesOfEntry = (
  io: Io,
  dataset: ImageFolderDataset,
  folder: string,
  entry: MetadataEntry,
  options: PrepareOptions,
  statistics: { readonly mean: number; readonly std: number } | undefined
) =>
  Effect.gen(function* () {
    const file = join(folder, entry.fileName)
    const { raster, amplitude, valid } = yield* amplitudeOf(io, dataset, file)
    const windows = planWindows(raster.width, raster.height, dataset.resolution, dataset.seed, hashString(entry.fileName))
    if (windows.length === 0) {
      return yield* Effect.fail(
        problem(file, "too-small", `image ${raster.width} × ${raster.height} is smaller than the training size ${dataset.resolution.size}`)
      )
    }
    const unit = normalise(amplitude, dataset.normalisation, { valid, ...(statistics ? { datasetStatistics: statistics } : {}) })
    const conditioning = options.conditioning && entry.conditioningFileName !== undefined
      ? yield* conditioningWindows(io, join(folder, entry.conditioningFileName), raster)
      : undefined
    const caption = applyCaptionTemplate(dataset.captionTemplate, entry.text, options.token)
    const tiled = dataset.resolution.mode === "tile"
    return windows.map((window): DatasetItem => {
      const sample: TrainingSample = {
        id: tiled ? `${entry.fileName}@${window.x},${window.y}` : entry.fileName,
        source: file,
        caption,
        width: window.size,
        height: window.size,
        channels: 1,
        pixels: toTrainingRange(cutWindow(unit, raster.width, 1, window)),
        window,
        ...(conditioning
          ? {
            conditioning: {
              width: window.size,
              height: window.size,
              channels: conditioning.channels,
              data: cutWindow(conditioning.data, conditioning.width, conditioning.channels, window)
            }
          }
          : {})
      }
      return { _tag: "Sample", sample }
    })
  })

export const imageFolderSamples = (
  io: Io,
  dataset: ImageFolderDataset,
  options: PrepareOptions = {}
): Stream.Stream<DatasetItem, DatasetError | DatasetFileError> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const folder = yield* resolveFolder(dataset.path, options.root)
      const templateProblem = checkTemplate(dataset.captionTemplate, options.token)
      if (templateProblem !== undefined) return yield* new DatasetError({ path: folder, reason: templateProblem })
      const metadata = yield* Effect.tryPromise({
        try: () => readMetadata(folder),
        catch: (error) => new DatasetError({ path: join(folder, METADATA_FILE), reason: (error as Error).message })
      })
      const entries: ReadonlyArray<MetadataEntry> = metadata.present
        ? metadata.entries
        : (yield* Effect.tryPromise({
          try: () => listImageFiles(folder),
          catch: (error) => new DatasetError({ path: folder, reason: (error as Error).message })
        })).map((fileName, k) => ({ line: k + 1, fileName, text: "", referencedFiles: [fileName] }))
      const statistics = dataset.normalisation._tag === "mean-std" && dataset.normalisation.statistics === "dataset"
        ? yield* datasetStatistics(io, dataset, entries.map((e) => join(folder, e.fileName)))
        : undefined
      const onProblem = (skipped: SkippedFile): Effect.Effect<Array<DatasetItem>, DatasetFileError> =>
        dataset.onError === "skip"
          ? Effect.succeed([{ _tag: "Skipped", skipped }])
          : Effect.fail(new DatasetFileError(skipped))
      const metadataItems = Stream.fromIterable(metadata.problems).pipe(
        Stream.mapEffect((p) => onProblem(problem(`${join(folder, METADATA_FILE)} line ${p.line}`, "metadata", p.reason))),
        Stream.flattenIterables
      )
      const sampleItems = Stream.fromIterable(entries).pipe(
        Stream.mapEffect((entry) =>
          samplesOfEntry(io, dataset, folder, entry, options, statistics).pipe(Effect.catchAll(onProblem))
        ),
        Stream.flattenIterables
      )
      return Stream.concat(metadataItems, sampleItems)
    })
  )
