import { FileSystem } from "@effect/platform"
import { join, resolve } from "node:path"
import { Effect, Stream } from "effect"
import type { ImageFolderDataset } from "../../framework/declaration/dataset.ts"
import { combineMoments, emptyMoments, meanStdOf, momentsOf, normalise, validityMask } from "../../framework/sar/normalisation.ts"
import { toAmplitude } from "../../framework/sar/units.ts"
import { oneHot, opticalCondition } from "../../framework/conditioning/condition-encoding.ts"
import {
  type ConditionRequest,
  DatasetError,
  DatasetFileProblems,
  type DatasetItem,
  type PrepareOptions,
  type SampleWindow,
  type SkippedFile
} from "../../framework/services/datasets.ts"
import { ImageIO, type Raster } from "../../framework/services/image-io.ts"
import { fileProblem, isNotFound } from "../../framework/files/file-errors.ts"
import { applyCaptionTemplate, checkTemplate } from "./caption-template.ts"
import { datasetFolder, type DatasetFolder, folderFile, outsideReason } from "./folder-files.ts"
import { listImageFiles, METADATA_FILE, type MetadataEntry, readMetadata } from "./metadata-jsonl.ts"
import { cutWindow, planWindows, windowSamples } from "./sample-windows.ts"
import { hashString } from "./seeded-random.ts"
import { singleBand } from "./single-band.ts"

/*
 * Training samples from an imagefolder, one file at a time: check the path → decode (pixel limit
 * first) → one band → linear amplitude → no-data mask → declared normalisation (per file) →
 * crops/tiles and flips → [-1, 1].
 */

type Io = typeof ImageIO.Service

export const resolveFolder = (path: string, root?: string) =>
  Effect.gen(function*() {
    const folder = resolve(root ?? process.cwd(), path)
    const fs = yield* FileSystem.FileSystem
    const info = yield* fs.stat(folder).pipe(
      Effect.mapError((error) => new DatasetError({ path: folder, reason: isNotFound(error) ? "no such folder" : fileProblem(error) }))
    )
    if (info.type !== "Directory") return yield* new DatasetError({ path: folder, reason: "not a folder" })
    return folder
  })

const problem = (file: string, kind: string, reason: string): SkippedFile => ({ file, kind, reason })

/** The path of a file of the folder, unless it leads outside it. */
const readablePath = (folder: DatasetFolder, name: string): Effect.Effect<string, SkippedFile, FileSystem.FileSystem> =>
  folderFile(folder, name).pipe(
    Effect.mapError((error) => problem(join(folder.path, name), "unreadable", fileProblem(error))),
    Effect.flatMap((file) =>
      "path" in file
        ? Effect.succeed(file.path)
        : Effect.fail(problem(join(folder.path, name), "outside-folder", outsideReason(file.outside)))
    )
  )

const decodeFile = (io: Io, dataset: ImageFolderDataset, file: string) =>
  io.read(file, { maxPixels: dataset.maxPixels }).pipe(Effect.mapError((error) => problem(file, error.kind ?? "corrupt", error.reason)))

/** Linear amplitude of one file's chosen band, with its validity mask, or the file's problem. */
const amplitudeOf = (io: Io, dataset: ImageFolderDataset, folder: DatasetFolder, name: string) =>
  readablePath(folder, name).pipe(
    Effect.flatMap((file) => decodeFile(io, dataset, file)),
    Effect.flatMap((raster) => {
      const band = singleBand(raster, dataset.band)
      if (typeof band === "string") return Effect.fail(problem(join(folder.path, name), "bands", band))
      const noData = dataset.noData ?? raster.noData
      const valid = validityMask(band, noData)
      return Effect.succeed({ raster, amplitude: toAmplitude(band, dataset.unit), valid })
    })
  )

/** Mean and population std of the amplitude over every readable file (first pass for "dataset" statistics). */
const datasetStatistics = (io: Io, dataset: ImageFolderDataset, folder: DatasetFolder, names: ReadonlyArray<string>) =>
  Effect.reduce(names, emptyMoments, (moments, name) =>
    amplitudeOf(io, dataset, folder, name).pipe(
      Effect.map(({ amplitude, valid }) => combineMoments(moments, momentsOf(amplitude, valid))),
      // Bad files are reported by the second pass, where onError decides.
      Effect.orElseSucceed(() => moments)
    )).pipe(Effect.map(meanStdOf))

/**
 * The entry's conditioning image, ready to be cut like the image: label maps as their one band (encoded
 * per window), optical images scaled to [0, 1], SAR through the dataset's unit and normalisation.
 */
const conditionSource = (io: Io, dataset: ImageFolderDataset, folder: DatasetFolder, entry: MetadataEntry, request: ConditionRequest, image: Raster) =>
  Effect.gen(function*() {
    const name = entry.pairedFiles[request.column]
    if (name === undefined) {
      return yield* Effect.fail(problem(join(folder.path, entry.fileName), "conditioning", `metadata line ${entry.line} names no ${request.column}`))
    }
    const file = join(folder.path, name)
    const fail = (reason: string) => Effect.fail(problem(file, "conditioning", `conditioning image: ${reason}`))
    const source: Raster | string = yield* Effect.gen(function*() {
      if (request.input === "sar") {
        const { raster, amplitude, valid } = yield* amplitudeOf(io, dataset, folder, name)
        return { ...raster, channels: 1, data: normalise(amplitude, dataset.normalisation, { valid }) }
      }
      const path = yield* readablePath(folder, name)
      const raster = yield* decodeFile(io, dataset, path)
      if (request.input === "optical") {
        const info = yield* io.info(path).pipe(Effect.mapError((error) => problem(path, error.kind ?? "corrupt", error.reason)))
        return opticalCondition(raster, info.sampleType)
      }
      const band = singleBand(raster, undefined)
      return typeof band === "string" ? band : { ...raster, channels: 1, data: band }
    }).pipe(Effect.catchAll((skipped) => fail(skipped.reason)))
    if (typeof source === "string") return yield* fail(source)
    if (source.width !== image.width || source.height !== image.height) {
      return yield* fail(`${source.width} × ${source.height}, the image is ${image.width} × ${image.height}`)
    }
    return source
  })

/** One window of the conditioning image, encoded (label maps one-hot here, per window: a whole map one-hot could be large). */
const conditionWindow = (source: Raster, request: ConditionRequest, window: SampleWindow, file: string): Raster | SkippedFile => {
  const data = cutWindow(source.data, source.width, source.channels, window)
  if (request.input !== "label-map") return { width: window.size, height: window.size, channels: source.channels, data }
  const encoded = oneHot(data, window.size, request.classValues ?? [])
  return typeof encoded === "string" ? problem(file, "conditioning", `conditioning image: ${encoded} (in the window at ${window.x}, ${window.y})`) : encoded
}

const samplesOfEntry = (
  io: Io,
  dataset: ImageFolderDataset,
  folder: DatasetFolder,
  entry: MetadataEntry,
  options: PrepareOptions,
  statistics: { readonly mean: number; readonly std: number } | undefined
) =>
  Effect.gen(function*() {
    const file = join(folder.path, entry.fileName)
    const { raster, amplitude, valid } = yield* amplitudeOf(io, dataset, folder, entry.fileName)
    const windows = planWindows(raster.width, raster.height, dataset.resolution, dataset.seed, hashString(entry.fileName))
    if (windows.length === 0) {
      return yield* Effect.fail(
        problem(file, "too-small", `image ${raster.width} × ${raster.height} is smaller than the training size ${dataset.resolution.size}`)
      )
    }
    const unit = normalise(amplitude, dataset.normalisation, { valid, ...(statistics ? { datasetStatistics: statistics } : {}) })
    const request = options.condition
    const condition = request === undefined ? undefined : yield* conditionSource(io, dataset, folder, entry, request, raster)
    // conditionSource failed above unless the entry names the paired file.
    const conditionFile = request === undefined ? "" : join(folder.path, entry.pairedFiles[request.column]!)
    const encoded = condition === undefined ? undefined : windows.map((window) => conditionWindow(condition, request!, window, conditionFile))
    const bad = encoded?.find((c): c is SkippedFile => "reason" in c)
    if (bad !== undefined) return yield* Effect.fail(bad)
    const caption = applyCaptionTemplate(dataset.captionTemplate, entry.text, options.token)
    return windowSamples({
      id: entry.fileName,
      source: file,
      caption,
      unit,
      width: raster.width,
      windows,
      tiled: dataset.resolution.mode === "tile",
      conditions: encoded as ReadonlyArray<Raster> | undefined
    })
  })

/**
 * With `onError: "skip"` each problem is an item; with "fail" every file is still checked (and
 * gives no more samples after the first problem), then the stream fails with all the problems.
 */
export const imageFolderSamples = (
  io: Io,
  dataset: ImageFolderDataset,
  options: PrepareOptions = {}
): Stream.Stream<DatasetItem, DatasetError | DatasetFileProblems, FileSystem.FileSystem> =>
  Stream.unwrap(
    Effect.gen(function*() {
      const path = yield* resolveFolder(dataset.path, options.root)
      const folder = yield* datasetFolder(path, dataset.followSymlinks).pipe(
        Effect.mapError((error) => new DatasetError({ path, reason: fileProblem(error) }))
      )
      const templateProblem = checkTemplate(dataset.captionTemplate, options.token)
      if (templateProblem !== undefined) return yield* new DatasetError({ path, reason: templateProblem })
      const metadata = yield* readMetadata(folder).pipe(
        Effect.mapError((error) => new DatasetError({ path: join(path, METADATA_FILE), reason: error.reason }))
      )
      const column = options.condition?.column
      if (column !== undefined && !metadata.columns.includes(column)) {
        return yield* new DatasetError(
          metadata.present
            ? {
              path: join(path, METADATA_FILE),
              reason: `has no column ${column} naming conditioning images (conditioning.from); its columns: ${
                ["file_name", "text", ...metadata.columns].join(", ")
              }`
            }
            : { path, reason: `has no ${METADATA_FILE}, so no column ${column} names conditioning images (conditioning.from)` }
        )
      }
      const entries: ReadonlyArray<MetadataEntry> = metadata.present
        ? metadata.entries
        : (yield* listImageFiles(path).pipe(Effect.mapError((error) => new DatasetError({ path, reason: error.reason })))).map((fileName, k) => ({
          line: k + 1,
          fileName,
          text: "",
          pairedFiles: {},
          referencedFiles: [fileName]
        }))
      const statistics = dataset.normalisation._tag === "mean-std" && dataset.normalisation.statistics === "dataset"
        ? yield* datasetStatistics(io, dataset, folder, entries.map((e) => e.fileName))
        : undefined
      const problems: Array<SkippedFile> = []
      const onProblem = (skipped: SkippedFile): Effect.Effect<Array<DatasetItem>> =>
        dataset.onError === "skip"
          ? Effect.succeed([{ _tag: "Skipped", skipped }])
          : Effect.sync(() => (problems.push(skipped), []))
      const metadataItems = Stream.fromIterable(metadata.problems).pipe(
        Stream.mapEffect((p) => onProblem(problem(`${join(path, METADATA_FILE)} line ${p.line}`, "metadata", p.reason))),
        Stream.flattenIterables
      )
      const sampleItems = Stream.fromIterable(entries).pipe(
        Stream.mapEffect((entry) =>
          samplesOfEntry(io, dataset, folder, entry, options, statistics).pipe(
            Effect.map((items) => (problems.length > 0 ? [] : items)),
            Effect.catchAll(onProblem)
          )
        ),
        Stream.flattenIterables
      )
      const verdict = Stream.suspend(() => problems.length > 0 ? Stream.fail(new DatasetFileProblems({ folder: path, problems })) : Stream.empty)
      return metadataItems.pipe(Stream.concat(sampleItems), Stream.concat(verdict))
    })
  )
