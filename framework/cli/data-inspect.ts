import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Console, Effect, Schema } from "effect"
import { Datasets, type FolderReport } from "../services/datasets.ts"
import { defaultMaxPixels } from "../services/image-io.ts"

/**
 * `sardine data inspect <folder> [--json] [--strict] [--max-pixels N] [--follow-symlinks]`: what an
 * imagefolder holds and what is wrong with it, under the rules a dataset declaration applies.
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
    `metadata      ${report.metadata.present ? `metadata.jsonl, ${report.metadata.lines} lines${report.metadata.columns.length > 0 ? `; columns ${report.metadata.columns.join(", ")}` : ""}` : "none"}`,
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

const folder = Args.directory({ name: "folder", exists: "yes" }).pipe(
  Args.withDescription("An imagefolder: images plus metadata.jsonl with file_name and text")
)

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
    folder,
    json: Options.boolean("json").pipe(Options.withDescription("Print JSON instead of text")),
    strict: Options.boolean("strict").pipe(Options.withDescription("Exit 1 if any file has a problem")),
    maxPixels,
    followSymlinks
  },
  ({ folder, followSymlinks, json, maxPixels, strict }) =>
    Effect.gen(function* () {
      const datasets = yield* Datasets
      const report = yield* datasets.inspect(folder, { maxPixels, followSymlinks })
      yield* Console.log(json ? JSON.stringify(report, null, 2) : inspectionText(report))
      if (strict && report.problems.length > 0) {
        return yield* new DataProblems({ folder: report.folder, count: report.problems.length })
      }
    })
).pipe(
  Command.withDescription(
    "Counts, formats, sizes, bands, caption coverage, value ranges, a unit hint and per-file problems (corrupt, empty, truncated or unsupported files, images over the pixel limit, symbolic links leading outside the folder, missing captions, bad metadata lines, NaN/infinite pixels)."
  )
)

/** `sardine data …` */
export const dataCommand = Command.make("data").pipe(
  Command.withDescription("Look at training data before using it."),
  Command.withSubcommands([inspectCommand])
)
