import { FileSystem } from "@effect/platform"
import { join, normalize } from "node:path"
import { Effect } from "effect"
import { fileProblem, isNotFound } from "../../framework/files/file-errors.ts"
import type { FileProblem, FolderReport, InspectedFile, InspectOptions } from "../../framework/services/datasets.ts"
import { DatasetError } from "../../framework/services/datasets.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { datasetFolder, type DatasetFolder, folderFile, outsideReason } from "./folder-files.ts"
import { resolveFolder } from "./image-folder-samples.ts"
import { listImageFiles, METADATA_FILE, readMetadata } from "./metadata-jsonl.ts"

/*
 * `sardine data inspect`: what a folder holds and what is wrong with it, decoding every image
 * once (one at a time, under the pixel limit) for value ranges and non-finite pixels.
 */

type Io = typeof ImageIO.Service

const bump = (counts: Record<string, number>, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1
}

interface ValueSummary {
  readonly min: number
  readonly max: number
  readonly sum: number
  readonly count: number
  readonly nonFinite: number
}

const summarise = (data: Float32Array, noData: number | undefined): ValueSummary => {
  let min = Infinity
  let max = -Infinity
  let sum = 0
  let count = 0
  let nonFinite = 0
  const noDataIsNaN = noData !== undefined && Number.isNaN(noData)
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!
    if (!Number.isFinite(v)) {
      // NaN declared as no-data is masking, not a problem.
      if (!(noDataIsNaN && Number.isNaN(v))) nonFinite++
      continue
    }
    if (noData !== undefined && v === noData) continue
    if (v < min) min = v
    if (v > max) max = v
    sum += v
    count++
  }
  return { min, max, sum, count, nonFinite }
}

const inspectImage = (io: Io, folder: DatasetFolder, options: InspectOptions, name: string, caption: string | undefined) =>
  Effect.gen(function*() {
    const captioned = caption !== undefined && caption.trim().length > 0
    const failed = (kind: string, reason: string, info: object = {}) => {
      const entry: InspectedFile = { file: name, ...info, captioned, problem: { file: name, kind, reason } }
      return { entry, values: undefined }
    }
    const found = yield* Effect.either(folderFile(folder, name))
    if (found._tag === "Left") return failed("unreadable", fileProblem(found.left))
    const located = found.right
    if ("outside" in located) return failed("outside-folder", outsideReason(located.outside))
    const header = yield* Effect.either(io.info(located.path))
    if (header._tag === "Left") return failed(header.left.kind ?? "corrupt", header.left.reason)
    const info = header.right
    const described = {
      format: info.format,
      width: info.width,
      height: info.height,
      bands: info.bands,
      sampleType: info.sampleType,
      ...(info.noData !== undefined ? { noData: info.noData } : {})
    }
    const decoded = yield* Effect.either(io.read(located.path, options.maxPixels === undefined ? {} : { maxPixels: options.maxPixels }))
    if (decoded._tag === "Left") return failed(decoded.left.kind ?? "corrupt", decoded.left.reason, described)
    const values = summarise(decoded.right.data, info.noData)
    const entry: InspectedFile = {
      file: name,
      ...described,
      captioned,
      ...(values.count > 0 ? { min: values.min, max: values.max, mean: values.sum / values.count } : {}),
      nonFinite: values.nonFinite,
      ...(values.nonFinite > 0
        ? {
          problem: {
            file: name,
            kind: "non-finite",
            reason: `${values.nonFinite} NaN or infinite pixel${values.nonFinite === 1 ? "" : "s"} (not the file's no-data value)`
          }
        }
        : {})
    }
    return { entry, values }
  })

/** A hint from the values; the dataset declaration states the unit. */
const unitHint = (
  sampleTypes: Record<string, number>,
  values: { min: number } | undefined,
  declared: string | undefined
): FolderReport["unitHint"] => {
  if (declared === "amplitude" || declared === "intensity" || declared === "db") {
    return { unit: declared, why: `synthetic.json says ${declared}` }
  }
  if (values === undefined) return { unit: "unknown", why: "no readable values" }
  if (values.min < 0) return { unit: "db", why: "negative values: decibels" }
  const types = Object.keys(sampleTypes)
  if (types.length > 0 && types.every((t) => t.startsWith("uint") || t.startsWith("int"))) {
    return { unit: "amplitude", why: "integer pixels: usually scaled amplitude (8/16-bit products)" }
  }
  if (types.some((t) => t.startsWith("complex") || t.startsWith("cint"))) {
    return { unit: "amplitude", why: "complex pixels: read as their magnitude, an amplitude" }
  }
  return { unit: "unknown", why: "non-negative floats: amplitude or intensity; check the product" }
}

/** The unit synthetic.json states, if the folder has one (a folder sardine generated); one that cannot be read is named. */
const declaredUnit = (folder: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const file = join(folder, "synthetic.json")
    const text = yield* fs.readFileString(file).pipe(
      Effect.catchIf(isNotFound, () => Effect.succeed(undefined)),
      Effect.mapError((error) => new DatasetError({ path: file, reason: fileProblem(error) }))
    )
    if (text === undefined) return undefined
    // Not sardine's synthetic.json, or not one with a unit: the values give the hint instead.
    const description = yield* Effect.try(() => JSON.parse(text) as { unit?: unknown } | null).pipe(Effect.orElseSucceed(() => undefined))
    return typeof description?.unit === "string" ? description.unit : undefined
  })

export const inspectFolder = (io: Io, path: string, options: InspectOptions = {}) =>
  Effect.gen(function*() {
    const folder = yield* resolveFolder(path)
    const fail = (reason: string) => new DatasetError({ path: folder, reason })
    const files = yield* datasetFolder(folder, options.followSymlinks ?? false).pipe(Effect.mapError((error) => fail(fileProblem(error))))
    const metadata = yield* readMetadata(files).pipe(Effect.mapError((error) => fail(error.reason)))
    const onDisk = yield* listImageFiles(folder).pipe(Effect.mapError((error) => fail(error.reason)))
    const problems: Array<FileProblem> = []
    if (!metadata.present) {
      problems.push({ file: METADATA_FILE, kind: "missing-metadata", reason: "no metadata.jsonl: the images have no captions" })
    }
    for (const p of metadata.problems) problems.push({ file: `${METADATA_FILE} line ${p.line}`, kind: "metadata", reason: p.reason })

    const images: Array<{ name: string; caption: string | undefined }> = metadata.present
      ? metadata.entries.map((e) => ({ name: e.fileName, caption: e.text }))
      : onDisk.map((name) => ({ name, caption: undefined }))

    const formats: Record<string, number> = {}
    const sampleTypes: Record<string, number> = {}
    const sizes: Record<string, number> = {}
    const bands: Record<string, number> = {}
    const inspected: Array<InspectedFile> = []
    let readable = 0
    let captioned = 0
    let nonFinitePixels = 0
    let min = Infinity
    let max = -Infinity
    let sum = 0
    let count = 0
    for (const image of images) {
      const { entry, values } = yield* inspectImage(io, files, options, image.name, image.caption)
      inspected.push(entry)
      if (entry.captioned) captioned++
      else if (metadata.present) problems.push({ file: image.name, kind: "missing-caption", reason: "empty caption (text)" })
      if (entry.problem) problems.push(entry.problem)
      if (values === undefined) continue
      readable++
      bump(formats, entry.format!)
      bump(sampleTypes, entry.sampleType!)
      bump(sizes, `${entry.width}×${entry.height}`)
      bump(bands, String(entry.bands))
      nonFinitePixels += values.nonFinite
      if (values.count > 0) {
        min = Math.min(min, values.min)
        max = Math.max(max, values.max)
        sum += values.sum
        count += values.count
      }
    }

    // Paired files (conditioning_file_name, …) must exist and decode; images nobody lists have no caption.
    const referenced = new Set<string>()
    for (const entry of metadata.entries) {
      for (const name of entry.referencedFiles) {
        referenced.add(normalize(name))
        if (name === entry.fileName) continue
        const found = yield* Effect.either(folderFile(files, name))
        if (found._tag === "Left") {
          problems.push({ file: name, kind: "unreadable", reason: `referenced on line ${entry.line}: ${fileProblem(found.left)}` })
          continue
        }
        const located = found.right
        if ("outside" in located) {
          problems.push({ file: name, kind: "outside-folder", reason: `referenced on line ${entry.line}: ${outsideReason(located.outside)}` })
          continue
        }
        const result = yield* Effect.either(io.info(located.path))
        if (result._tag === "Left") {
          problems.push({ file: name, kind: result.left.kind ?? "corrupt", reason: `referenced on line ${entry.line}: ${result.left.reason}` })
        }
      }
    }
    if (metadata.present) {
      for (const name of onDisk) {
        if (!referenced.has(normalize(name))) {
          problems.push({ file: name, kind: "missing-caption", reason: "not listed in metadata.jsonl: no caption" })
        }
      }
    }

    const values = count > 0 ? { min, max, mean: sum / count } : undefined
    const report: FolderReport = {
      folder,
      images: images.length,
      readable,
      formats,
      sampleTypes,
      sizes,
      bands,
      metadata: { present: metadata.present, lines: metadata.lines, columns: metadata.columns },
      captionCoverage: images.length > 0 ? captioned / images.length : 0,
      ...(values ? { values } : {}),
      unitHint: unitHint(sampleTypes, values, yield* declaredUnit(folder)),
      nonFinitePixels,
      files: inspected,
      problems
    }
    return report
  })
