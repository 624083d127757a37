import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Console, Effect, Option, Schema } from "effect"
import { join } from "node:path"
import { Datasets, type FolderReport, type ShardReport } from "../services/datasets.ts"
import { defaultMaxPixels } from "../services/image-io.ts"

/**
 * `sardine data inspect <folder | shards> [--json] [--strict] [--max-pixels N] [--follow-symlinks]
 * [--caption SOURCE]`: what an imagefolder, or a set of WebDataset shards, holds and what is wrong with
 * it, under the rules a dataset declaration applies.
 */

export class DataProblems extends Schema.TaggedError<DataProblems>()("DataProblems", {
  folder: Schema.String,
  count: Schema.Number
}) {
  override get message() {
    return `${this.folder}: ${this.count} problem${this.count === 1 ? "" : "s"} (--strict)`
  }
}

const fmt = (x: number) => Number(x.toPrecision(6)).toString()

const counts = (record: Readonly<Record<string, number>>) =>
  Object.entries(record).length === 0
    ? "none"
    : Object.entries(record)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, n]) => `${key} ${n}`)
      .join(", ")

export const inspectionText = (report: FolderReport): string => {
  const captioned = Math.round(report.captionCoverage * report.images)
  const lines = [
    `folder        ${report.folder}`,
    `images        ${report.images} (${report.readable} readable)`,
    `formats       ${counts(report.formats)}`,
    `sample types  ${counts(report.sampleTypes)}`,
    `sizes         ${counts(report.sizes)}`,
    `bands         ${counts(report.bands)}`,
    `metadata      ${
      report.metadata.present
        ? `metadata.jsonl, ${report.metadata.lines} lines${report.metadata.columns.length > 0 ? `; columns ${report.metadata.columns.join(", ")}` : ""}`
        : "none"
    }`,
    `captions      ${fmt(100 * report.captionCoverage)}% (${captioned} of ${report.images})`,
    `values        ${report.values ? `min ${fmt(report.values.min)}, max ${fmt(report.values.max)}, mean ${fmt(report.values.mean)}` : "none readable"}`,
    `unit hint     ${report.unitHint.unit} (${report.unitHint.why})`,
    `non-finite    ${report.nonFinitePixels} pixels`
  ]
  if (report.problems.length === 0) lines.push("problems      none")
  else {
    lines.push(`problems      ${report.problems.length}`)
    for (const p of report.problems) lines.push(`  ${p.file}  [${p.kind}]  ${p.reason}`)
  }
  return lines.join("\n")
}

export const shardInspectionText = (report: ShardReport): string => {
  const bytes = report.shards.reduce((total, s) => total + s.bytes, 0)
  const lines = [
    `shards        ${report.shards.length} (${fmt(bytes / 1e6)} MB)${report.shards.length <= 3 ? `: ${report.shards.map((s) => s.file).join(", ")}` : ""}`,
    `samples       ${report.samples}`,
    `members       ${counts(report.members)}`
  ]
  for (const [extension, image] of Object.entries(report.images)) {
    lines.push(
      `${extension.padEnd(13)} ${image.count} images; ${counts(image.types)}; sizes ${counts(image.sizes)}; bands ${counts(image.bands)}`,
      `${"".padEnd(13)} values ${
        image.values ? `min ${fmt(image.values.min)}, max ${fmt(image.values.max)}, mean ${fmt(image.values.mean)}` : "none readable"
      }; non-finite ${image.nonFinitePixels} pixels`
    )
  }
  lines.push(`text fields   ${Object.keys(report.jsonFields).length === 0 ? "none" : counts(report.jsonFields)}`)
  if (report.caption !== undefined) lines.push(`captions      ${fmt(100 * report.caption.coverage)}% in ${report.caption.source}`)
  if (report.problems.length === 0) lines.push("problems      none")
  else {
    lines.push(`problems      ${report.problems.length}`)
    for (const p of report.problems) lines.push(`  ${p.file}  [${p.kind}]  ${p.reason}`)
  }
  return lines.join("\n")
}

const source = Args.text({ name: "folder | shards" }).pipe(
  // A text argument takes any word: without this, a mistyped option would be inspected as a folder of that name.
  Args.mapEffect((value) => value.startsWith("-") ? Effect.fail(HelpDoc.p(`unknown option '${value}'`)) : Effect.succeed(value)),
  Args.withDescription(
    "An imagefolder (images plus metadata.jsonl with file_name and text), or WebDataset shards: a .tar file, a pattern (shard-{000..009}.tar, train/**/*.tar) or a folder of .tar files"
  )
)

const imageFile = /\.(png|jpe?g|tiff?)$/i

/** The shard patterns an argument names, or undefined for an imagefolder. */
const isFolder = (fs: FileSystem.FileSystem, path: string) =>
  fs.stat(path).pipe(Effect.map((info) => info.type === "Directory"), Effect.orElseSucceed(() => false))

const shardPatterns = (argument: string): Effect.Effect<ReadonlyArray<string> | undefined, PlatformError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (/[*?[{]/.test(argument) || argument.endsWith(".tar")) return [argument]
    const fs = yield* FileSystem.FileSystem
    if (!(yield* isFolder(fs, argument))) return undefined
    const top = yield* fs.readDirectory(argument)
    if (top.includes("metadata.jsonl") || top.some((name) => imageFile.test(name))) return undefined
    const entries = yield* fs.readDirectory(argument, { recursive: true })
    return entries.some((name) => name.endsWith(".tar")) ? [join(argument, "**/*.tar")] : undefined
  })

const maxPixels = Options.integer("max-pixels").pipe(
  Options.withDefault(defaultMaxPixels),
  Options.mapEffect((n) =>
    n >= 1 ? Effect.succeed(n) : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--max-pixels: must be an integer ≥ 1 (got ${n})`)))
  ),
  Options.withDescription(
    `Images of more pixels (width × height) are reported as too large from their header, not decoded (the dataset's maxPixels; default ${defaultMaxPixels} = 16384 × 16384)`
  )
)

const followSymlinks = Options.boolean("follow-symlinks").pipe(
  Options.withDescription("Read files whose symbolic links lead outside the folder (the dataset's followSymlinks); otherwise they are a problem")
)

const inspectCommand = Command.make(
  "inspect",
  {
    source,
    json: Options.boolean("json").pipe(Options.withDescription("Print JSON instead of text")),
    strict: Options.boolean("strict").pipe(Options.withDescription("Exit 1 if any file has a problem")),
    maxPixels,
    followSymlinks,
    caption: Options.text("caption").pipe(
      Options.optional,
      Options.withDescription("Shards: the caption source to check in every sample, as a webDataset declares it (\"txt\", \"meta.json#caption.MID\")")
    )
  },
  ({ caption, followSymlinks, json, maxPixels, source, strict }) =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const patterns = yield* shardPatterns(source)
      if (patterns !== undefined) {
        const shards = yield* datasets.inspectShards(patterns, { maxPixels, ...Option.match(caption, { onNone: () => ({}), onSome: (c) => ({ caption: c }) }) })
        yield* Console.log(json ? JSON.stringify(shards, null, 2) : shardInspectionText(shards))
        if (strict && shards.problems.length > 0) return yield* new DataProblems({ folder: source, count: shards.problems.length })
        return
      }
      if (Option.isSome(caption)) return yield* Effect.fail(ValidationError.invalidValue(HelpDoc.p("--caption applies to WebDataset shards")))
      if (!(yield* isFolder(yield* FileSystem.FileSystem, source))) {
        return yield* Effect.fail(ValidationError.invalidValue(HelpDoc.p(`${source}: no such folder, .tar file or shard pattern`)))
      }
      const report = yield* datasets.inspect(source, { maxPixels, followSymlinks })
      yield* Console.log(json ? JSON.stringify(report, null, 2) : inspectionText(report))
      if (strict && report.problems.length > 0) {
        return yield* new DataProblems({ folder: report.folder, count: report.problems.length })
      }
    })
).pipe(
  Command.withDescription(
    "Counts, formats, sizes, bands, caption coverage, value ranges, a unit hint and per-file problems (corrupt, empty, truncated or unsupported files, images over the pixel limit, symbolic links leading outside the folder, missing captions, bad metadata lines, NaN/infinite pixels); for WebDataset shards, members per sample, image types and values, JSON text fields and every damaged member or archive."
  )
)

/** `sardine data …` */
export const dataCommand = Command.make("data").pipe(
  Command.withDescription("Look at training data before using it."),
  Command.withSubcommands([inspectCommand])
)
