import { Context, Schema } from "effect"
import type { Effect, Stream } from "effect"
import type { ConditioningInput } from "../declaration/conditioning.ts"
import type { Dataset, SyntheticDataset } from "../declaration/dataset.ts"
import type { Raster } from "./image-io.ts"

/*
 * Turning a declared dataset into training samples, inspecting a folder before using it, and
 * writing a synthetic dataset. Samples stream one file at a time: a 100k-tile dataset is never
 * held in memory unless `load` is asked for.
 */

/** Where a sample sits in its source image and how it was flipped (to transform paired images alike). */
export interface SampleWindow {
  readonly x: number
  readonly y: number
  readonly size: number
  readonly flipHorizontal: boolean
  readonly flipVertical: boolean
}

export interface TrainingSample {
  /** Stable id: the file name (plus `@x,y` for tiles) or the synthetic scene name. */
  readonly id: string
  /** The file it came from, or `synthetic:<seed>/<index>`. */
  readonly source: string
  /** The caption after the template: "<SAR> image of a harbour with three ships". */
  readonly caption: string
  readonly width: number
  readonly height: number
  readonly channels: number
  /** HWC, in [-1, 1]: the declared normalisation to [0, 1], then 2x − 1. No-data pixels are −1. */
  readonly pixels: Float32Array
  readonly window: SampleWindow
  /**
   * The paired conditioning image (PrepareOptions.condition), cut and flipped the same way, encoded for a
   * ControlNet (condition-encoding.ts): HWC in [0, 1], label maps one-hot.
   */
  readonly conditioning?: Raster
}

export interface SkippedFile {
  readonly file: string
  /** The decoder's problem kind ("truncated", "too-large", …) or "too-small", "bands", "outside-folder", "metadata". */
  readonly kind: string
  readonly reason: string
}

export type DatasetItem =
  | { readonly _tag: "Sample"; readonly sample: TrainingSample }
  | { readonly _tag: "Skipped"; readonly skipped: SkippedFile }

/** Which conditioning image comes with each sample, and how it is encoded. */
export interface ConditionRequest {
  readonly input: ConditioningInput
  /** The metadata column naming each image's conditioning file (synthetic scenes: conditioning_file_name, optical_file_name). */
  readonly column: string
  /** Label maps: the class values, in channel order. */
  readonly classValues?: ReadonlyArray<number>
}

export interface PrepareOptions {
  /** Value of `{token}` in caption templates (the experiment's learned token, e.g. `<SAR>`); undefined when the experiment learns none. */
  readonly token?: string | undefined
  /** Also read each sample's paired conditioning image. */
  readonly condition?: ConditionRequest
  /** Folder that a relative image-folder path is resolved against (default: the working directory). */
  readonly root?: string
}

export interface LoadedDataset {
  readonly samples: ReadonlyArray<TrainingSample>
  readonly skipped: ReadonlyArray<SkippedFile>
}

/** A file-level problem that `sardine data inspect` reports. */
export interface FileProblem {
  readonly file: string
  readonly kind: string
  readonly reason: string
}

export interface InspectedFile {
  readonly file: string
  readonly format?: string
  readonly width?: number
  readonly height?: number
  readonly bands?: number
  readonly sampleType?: string
  readonly noData?: number
  readonly captioned: boolean
  /** Over finite, non-no-data values of all bands. */
  readonly min?: number
  readonly max?: number
  readonly mean?: number
  readonly nonFinite?: number
  readonly problem?: FileProblem
}

export interface FolderReport {
  readonly folder: string
  /** Training images: the `file_name`s of metadata.jsonl, or every image file when there is none. */
  readonly images: number
  readonly readable: number
  readonly formats: Readonly<Record<string, number>>
  readonly sampleTypes: Readonly<Record<string, number>>
  /** "width×height" → count. */
  readonly sizes: Readonly<Record<string, number>>
  readonly bands: Readonly<Record<string, number>>
  readonly metadata: {
    readonly present: boolean
    readonly lines: number
    /** Extra columns seen besides file_name and text (conditioning_file_name, …). */
    readonly columns: ReadonlyArray<string>
  }
  /** Fraction of images with a non-empty caption. */
  readonly captionCoverage: number
  readonly values?: { readonly min: number; readonly max: number; readonly mean: number }
  /** What the values suggest about the unit ("db": negative values, …); a hint, the declaration decides. */
  readonly unitHint: { readonly unit: "amplitude" | "intensity" | "db" | "unknown"; readonly why: string }
  readonly nonFinitePixels: number
  readonly files: ReadonlyArray<InspectedFile>
  /** Every problem: files that fail to decode, missing referenced files, bad metadata lines, images without captions. */
  readonly problems: ReadonlyArray<FileProblem>
}

/** What `sardine data inspect` prints about WebDataset shards. */
export interface ShardReport {
  readonly shards: ReadonlyArray<{ readonly file: string; readonly bytes: number; readonly samples: number }>
  readonly samples: number
  /** Member extension ("sar.png", "meta.json") → samples that have it. */
  readonly members: Readonly<Record<string, number>>
  /** Per image member extension: value types (numpy dtypes for .npy), "width×height" sizes, bands, values. */
  readonly images: Readonly<
    Record<string, {
      readonly count: number
      readonly types: Readonly<Record<string, number>>
      readonly sizes: Readonly<Record<string, number>>
      readonly bands: Readonly<Record<string, number>>
      readonly values?: { readonly min: number; readonly max: number; readonly mean: number }
      readonly nonFinitePixels: number
    }>
  >
  /** "meta.json#caption.MID" → samples whose JSON member has that text field: the caption sources there are. */
  readonly jsonFields: Readonly<Record<string, number>>
  /** With a caption source: the fraction of samples that have a non-empty caption there. */
  readonly caption?: { readonly source: string; readonly coverage: number }
  readonly problems: ReadonlyArray<FileProblem>
}

export interface SyntheticSummary {
  readonly folder: string
  readonly scenes: number
  /** Scene kind → count, and class → scenes containing it. */
  readonly kinds: Readonly<Record<string, number>>
  readonly classes: Readonly<Record<string, number>>
}

/** A dataset as a whole cannot be used: missing folder, unreadable metadata.jsonl, bad template use. */
export class DatasetError extends Schema.TaggedError<DatasetError>()("DatasetError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

const SkippedFileSchema = Schema.Struct({ file: Schema.String, kind: Schema.String, reason: Schema.String })

/** Files of a dataset declared `onError: "fail"` have problems: every file was checked, all of them are listed. */
export class DatasetFileProblems extends Schema.TaggedError<DatasetFileProblems>()("DatasetFileProblems", {
  folder: Schema.String,
  problems: Schema.Array(SkippedFileSchema)
}) {
  override get message() {
    const count = this.problems.length
    const within = (file: string) => (file.startsWith(`${this.folder}/`) ? file.slice(this.folder.length + 1) : file)
    return [
      `${this.folder}: ${count} file problem${count === 1 ? "" : "s"} (the dataset declares onError: "fail"):`,
      ...this.problems.map((p) => `  ${within(p.file)}  [${p.kind}]  ${p.reason}`),
      `declare onError: "skip" to leave ${count === 1 ? "this file" : "these files"} out (each is listed in the prepared index), or fix ${
        count === 1 ? "it" : "them"
      }; \`sardine data inspect ${this.folder}\` shows the whole folder`
    ].join("\n")
  }
}

/** What `inspect` applies as the dataset would (an imagefolder declaration's `maxPixels` and `followSymlinks`). */
export interface InspectOptions {
  readonly maxPixels?: number
  readonly followSymlinks?: boolean
}

export class Datasets extends Context.Tag("sardine/Datasets")<Datasets, {
  /**
   * Samples one by one; with `onError: "skip"`, each skipped file is an item too, never dropped
   * silently; with "fail", the stream checks every file and then fails with all problems.
   */
  readonly samples: (
    dataset: Dataset,
    options?: PrepareOptions
  ) => Stream.Stream<DatasetItem, DatasetError | DatasetFileProblems>
  /** All samples in memory (small datasets, tests). */
  readonly load: (dataset: Dataset, options?: PrepareOptions) => Effect.Effect<LoadedDataset, DatasetError | DatasetFileProblems>
  /** Everything `sardine data inspect` prints about a folder. */
  readonly inspect: (folder: string, options?: InspectOptions) => Effect.Effect<FolderReport, DatasetError>
  /** The same about WebDataset shards (patterns as a webDataset declaration takes them), read once each. */
  readonly inspectShards: (
    patterns: ReadonlyArray<string>,
    options?: { readonly root?: string; readonly caption?: string; readonly maxPixels?: number }
  ) => Effect.Effect<ShardReport, DatasetError>
  /** Writes a synthetic dataset as an imagefolder; the folder appears only when complete. */
  readonly writeSynthetic: (dataset: SyntheticDataset, folder: string) => Effect.Effect<SyntheticSummary, DatasetError>
}>() {}
