import { Effect, type ParseResult, Schema } from "effect"
import { SarUnit } from "../sar/units.ts"
import { defaultMaxPixels } from "../services/image-io.ts"
import { FolderFingerprint } from "./folder-fingerprint.ts"
import { declarationIssues } from "./issues.ts"
import { Bool, IntegerAtLeast, NonEmptyString, NonNegativeNumber, numberWhere, OneOf, PositiveNumber, Seed } from "./rules.ts"

/*
 * What a user declares about training data: a folder of SAR images with captions, or synthetic
 * scenes from the built-in generator. A declaration is plain data (canonical JSON, hashable);
 * the Datasets service turns it into normalised training samples.
 */

// ---------------------------------------------------------------------------------------------
// Field rules (shared with the other declarations): messages read "must be an integer ≥ 1 (got 0)".

const intBetween = (min: number, max: number) => numberWhere(`an integer from ${min} to ${max}`, (n) => Number.isInteger(n) && n >= min && n <= max)

const numberBetween = (min: number, max: number) => numberWhere(`a number from ${min} to ${max}`, (n) => Number.isFinite(n) && n >= min && n <= max)

const finite = numberWhere("a finite number", Number.isFinite)

/** Placeholders a caption template may use. */
export const captionPlaceholders = ["token", "caption"] as const

/** `{token}` is the learned token (e.g. `<SAR>`) from the experiment; `{caption}` the file's own caption. */
export const CaptionTemplate = Schema.String.pipe(
  Schema.filter((template) => {
    const unknown = [...template.matchAll(/\{([^}]*)\}/g)]
      .map((m) => m[1] ?? "")
      .filter((name) => !(captionPlaceholders as ReadonlyArray<string>).includes(name))
    return unknown.length === 0 ||
      `uses unknown placeholder {${unknown[0]}}; allowed: ${captionPlaceholders.map((p) => `{${p}}`).join(", ")}`
  })
)

// ---------------------------------------------------------------------------------------------
// Normalisation of linear amplitude to [0, 1] (training tensors are then mapped to [-1, 1]).

/** Statistics a mean/std normalisation divides by. */
export const MeanStdStatistics = Schema.Union(
  /** Mean and std of each image on its own (the seed study). */
  OneOf("per-image", "dataset"),
  /** Given dataset-wide statistics of linear amplitude. */
  Schema.Struct({ mean: PositiveNumber, std: NonNegativeNumber })
)
export type MeanStdStatistics = typeof MeanStdStatistics.Type

/** A / (mean + k·std), clipped to [0, 1]; population std; no-data pixels excluded from the statistics. */
export const MeanStdNormalisation = Schema.TaggedStruct("mean-std", {
  k: Schema.optionalWith(NonNegativeNumber, { exact: true, default: () => 3 }),
  /** "dataset" computes mean and std over all files of the dataset in a first pass. */
  statistics: Schema.optionalWith(MeanStdStatistics, { exact: true, default: () => "per-image" as const })
})
export type MeanStdNormalisation = typeof MeanStdNormalisation.Type

/** 20·log10(A) mapped linearly from [min, max] dB to [0, 1], clipped. */
export const DbWindowNormalisation = Schema.TaggedStruct("db-window", {
  min: finite,
  max: finite
}).pipe(Schema.filter((w) => w.max > w.min || { path: ["max"], message: `must be greater than min (${w.min}) (got ${w.max})` }))
export type DbWindowNormalisation = typeof DbWindowNormalisation.Type

/** Amplitude mapped linearly from its [low, high] percentiles (per image) to [0, 1], clipped. */
export const PercentileNormalisation = Schema.TaggedStruct("percentile", {
  low: Schema.optionalWith(numberBetween(0, 100), { exact: true, default: () => 1 }),
  high: Schema.optionalWith(numberBetween(0, 100), { exact: true, default: () => 99 })
}).pipe(Schema.filter((p) => p.high > p.low || { path: ["high"], message: `must be greater than low (${p.low}) (got ${p.high})` }))
export type PercentileNormalisation = typeof PercentileNormalisation.Type

export const Normalisation = Schema.Union(MeanStdNormalisation, DbWindowNormalisation, PercentileNormalisation)
export type Normalisation = typeof Normalisation.Type

// ---------------------------------------------------------------------------------------------
// Bringing images to the training resolution.

export const CropMode = OneOf("center-crop", "random-crop", "tile")
export type CropMode = typeof CropMode.Type

/** Flips drawn per sample from the dataset seed. Flipping a SAR image mirrors its look direction. */
export const FlipMode = OneOf("none", "horizontal", "vertical", "both")
export type FlipMode = typeof FlipMode.Type

export const Resolution = Schema.Struct({
  /** Side of the square training sample, in pixels. */
  size: intBetween(8, 8192),
  /** center-crop and random-crop give one sample per file; tile gives every full tile of the file. */
  mode: Schema.optionalWith(CropMode, { exact: true, default: () => "center-crop" as const }),
  /** Step between tiles in tile mode; defaults to the size (no overlap). */
  stride: Schema.optionalWith(IntegerAtLeast(1), { exact: true }),
  flip: Schema.optionalWith(FlipMode, { exact: true, default: () => "none" as const })
})
export type Resolution = typeof Resolution.Type

// ---------------------------------------------------------------------------------------------
// The datasets.

export const OnError = OneOf("fail", "skip")
export type OnError = typeof OnError.Type

const defaultNormalisation = (): Normalisation => ({ _tag: "mean-std", k: 3, statistics: "per-image" })

/**
 * A Hugging Face "imagefolder": images plus `metadata.jsonl` lines `{"file_name", "text"}`
 * (optional `conditioning_file_name`).
 */
/** What every dataset of image files declares: how values, sizes, captions and bad files are read. */
const imageSampleFields = {
  /** What the pixel values mean. */
  unit: OneOf(...SarUnit.literals),
  /** Zero-based band of multi-band files; needed when a file's bands differ (grey stored as RGB is read as grey). */
  band: Schema.optionalWith(IntegerAtLeast(0), { exact: true }),
  /** Pixel value meaning "no data" (in the file's own unit); such pixels are masked. Overrides the file's GDAL_NODATA. */
  noData: Schema.optionalWith(Schema.Number, { exact: true }),
  normalisation: Schema.optionalWith(Normalisation, { exact: true, default: defaultNormalisation }),
  resolution: Schema.optionalWith(Resolution, {
    exact: true,
    default: () => ({ size: 512, mode: "center-crop" as const, flip: "none" as const })
  }),
  captionTemplate: Schema.optionalWith(CaptionTemplate, { exact: true, default: () => "{caption}" }),
  /** "fail": check every file, then fail listing every problem; "skip": leave bad files out, each listed in the prepared index. */
  onError: Schema.optionalWith(OnError, { exact: true, default: () => "fail" as const }),
  /** Seed of the random crops and flips. */
  seed: Schema.optionalWith(Seed, { exact: true, default: () => 0 }),
  /** Images of more pixels (width × height) are refused from their header, before decoding: a small file can declare a huge image. */
  maxPixels: Schema.optionalWith(IntegerAtLeast(1), { exact: true, default: () => defaultMaxPixels })
}

export const ImageFolderDataset = Schema.TaggedStruct("image-folder", {
  path: NonEmptyString,
  ...imageSampleFields,
  /** Read files whose real path (symbolic links resolved) lies outside the folder; refused by default. */
  followSymlinks: Schema.optionalWith(Bool, { exact: true, default: () => false }),
  /** How edits to the folder are noticed (folder-fingerprint.ts); "metadata" when absent. */
  fingerprint: Schema.optionalWith(FolderFingerprint, { exact: true })
})
export type ImageFolderDataset = typeof ImageFolderDataset.Type

/** Classes of the synthetic scene generator's label map (label value = index + 1; 0 = none). */
export const sceneClasses = ["water", "bare-field", "crops", "forest", "urban", "roads", "bridges", "ships"] as const
export const SceneClass = OneOf(...sceneClasses)
/** Classes that can cover a whole scene; the others are objects placed on them. */
const fillClasses: ReadonlyArray<SceneClass> = ["water", "bare-field", "crops", "forest", "urban"]
export type SceneClass = typeof SceneClass.Type

/** Direction the radar beam travels across the image; the sensor sits on the opposite side. */
export const LookDirection = OneOf("right", "left", "down", "up")
export type LookDirection = typeof LookDirection.Type

/** Which rendering of the synthetic layout becomes the training image. */
export const SyntheticModality = OneOf("sar", "optical")
export type SyntheticModality = typeof SyntheticModality.Type

const syntheticFields = {
  /** Number of scenes. */
  n: IntegerAtLeast(1),
  /** Side of the square scene in pixels. */
  size: intBetween(16, 8192),
  seed: Schema.optionalWith(Seed, { exact: true, default: () => 0 }),
  /** Number of looks L of the multiplicative speckle (1 = single look). */
  looks: Schema.optionalWith(IntegerAtLeast(1), { exact: true, default: () => 1 }),
  /** Classes withheld from every scene (bridges and ships need water, so excluding water excludes them too). */
  exclude: Schema.optionalWith(Schema.Array(SceneClass), { exact: true, default: () => [] }),
  lookDirection: Schema.optionalWith(LookDirection, { exact: true, default: () => "right" as const }),
  /** Incidence angle θ in degrees: layover shifts a height h by h·cot θ, shadows are h·tan θ long. */
  incidenceAngle: Schema.optionalWith(numberBetween(15, 65), { exact: true, default: () => 35 }),
  modality: Schema.optionalWith(SyntheticModality, { exact: true, default: () => "sar" as const }),
  /**
   * Optical only: the strongest pixel-scale grain, 0–1; each scene draws its strength in [0, grain]
   * (1 = single-look-like multiplicative grain). Absent: none.
   */
  grain: Schema.optionalWith(numberBetween(0, 1), { exact: true }),
  /**
   * Optical only: "grey" gives one band, the mean of R, G and B — what a generate step writes of a
   * three-channel sample, so a CLIP trained on it sees optical scenes as it will judge them. Absent: RGB.
   */
  colour: Schema.optionalWith(OneOf("rgb", "grey"), { exact: true }),
  normalisation: Schema.optionalWith(Normalisation, { exact: true, default: defaultNormalisation }),
  /**
   * `{caption}` is the scene description ("a harbour with three ships near a bridge"). Absent:
   * "SAR image of {caption}" or "optical image of {caption}", after the modality.
   */
  captionTemplate: Schema.optionalWith(CaptionTemplate, { exact: true })
}

const SyntheticDeclared = Schema.TaggedStruct("synthetic", syntheticFields).pipe(
  Schema.filter((d) =>
    fillClasses.some((c) => !d.exclude.includes(c)) || {
      path: ["exclude"],
      message: `must leave at least one of ${fillClasses.join(", ")} (the classes that cover a scene)`
    }
  ),
  Schema.filter((d) =>
    d.grain === undefined || d.modality === "optical" || {
      path: ["grain"],
      message: "applies to optical scenes only (modality: \"optical\"); SAR scenes carry speckle from looks"
    }
  ),
  Schema.filter((d) =>
    d.colour === undefined || d.modality === "optical" || {
      path: ["colour"],
      message: "applies to optical scenes only (modality: \"optical\"); SAR scenes have one band"
    }
  )
)

/** The caption template's default follows the modality, so it is filled in after the other fields. */
export const SyntheticDataset = Schema.transform(
  SyntheticDeclared,
  Schema.typeSchema(Schema.TaggedStruct("synthetic", { ...syntheticFields, captionTemplate: Schema.String })),
  {
    strict: true,
    decode: (d) => ({ ...d, captionTemplate: d.captionTemplate ?? `${d.modality === "sar" ? "SAR" : "optical"} image of {caption}` }),
    encode: (d) => d
  }
)
export type SyntheticDataset = typeof SyntheticDataset.Type

/** A member of a WebDataset sample, by its extension (the member name after the sample key): "sar.png", "sar.npy", "tif". */
const ImageMember = NonEmptyString.pipe(
  Schema.filter((ext) =>
    /^[^/#]*\.?(png|jpe?g|tiff?|npy)$/i.test(ext) ||
    `must name an image member by its extension, ending in png, jpg, jpeg, tif, tiff or npy (got ${JSON.stringify(ext)})`
  )
)

/** "<ext>" of a text member ("txt"), or "<ext>#<dotted path>" of a field in a JSON member ("meta.json#caption.MID"). */
const CaptionSource = NonEmptyString.pipe(
  Schema.filter((source) => {
    const [ext, path, more] = source.split("#") as [string, string?, string?] // split gives at least one part
    if (more !== undefined) return `must have at most one # (got ${JSON.stringify(source)})`
    const json = /(^|\.)json$/i.test(ext)
    if (json && (path === undefined || path === "")) return `names a JSON member: add #<field path>, e.g. "${ext}#caption" (got ${JSON.stringify(source)})`
    if (!json && path !== undefined) return `#<field path> reads JSON members only; ${JSON.stringify(ext)} is not one (got ${JSON.stringify(source)})`
    return true
  })
)

/** One pattern or a list of them; always a list once decoded. */
const ShardPatterns = Schema.transform(
  Schema.Union(NonEmptyString, Schema.NonEmptyArray(NonEmptyString)),
  Schema.typeSchema(Schema.NonEmptyArray(NonEmptyString)),
  { strict: true, decode: (p) => (typeof p === "string" ? [p] as const : p), encode: (p) => p }
)

/**
 * WebDataset shards: `.tar` files whose members are grouped into samples by key (the member name up
 * to the first dot of its file name), streamed one sample at a time. `image` and `caption` name the
 * members by extension; the image is read as `imageFolder` reads files (PNG, JPEG, TIFF) or as a
 * NumPy array (complex values become amplitude |z|).
 */
export const WebDatasetDataset = Schema.TaggedStruct("webdataset", {
  /** Shard files: brace ranges (`shard-{00000..00099}.tar`) and globs (`train/**\/*.tar`), relative to the declaration. */
  shards: ShardPatterns,
  image: ImageMember,
  /** Where each sample's caption is; absent: none (the template's `{caption}` is then empty). */
  caption: Schema.optionalWith(CaptionSource, { exact: true }),
  /** Complex arrays are read as amplitude |z|: their dataset must say unit "amplitude". */
  ...imageSampleFields
})
export type WebDatasetDataset = typeof WebDatasetDataset.Type

export const Dataset = Schema.Union(ImageFolderDataset, SyntheticDataset, WebDatasetDataset)
export type Dataset = typeof Dataset.Type
/** What a user may write (defaults not yet applied). */
export type DatasetInput = typeof Dataset.Encoded

// ---------------------------------------------------------------------------------------------
// Decoding with messages of the form "<field path>: <rule>".

export class DatasetDeclarationError extends Schema.TaggedError<DatasetDeclarationError>()("DatasetDeclarationError", {
  issues: Schema.Array(Schema.String)
}) {
  override get message() {
    return `invalid dataset declaration:\n  ${this.issues.join("\n  ")}`
  }
}

/** Flattens a parse error into one line per problem: `path.to.field: message`. */
export const formatIssues = (error: ParseResult.ParseError): Array<string> =>
  declarationIssues(error).map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message))

export const decodeDataset = (input: unknown): Effect.Effect<Dataset, DatasetDeclarationError> =>
  Schema.decodeUnknown(Dataset)(input, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError((error) => new DatasetDeclarationError({ issues: formatIssues(error) }))
  )

/** Optional fields are exact (absent, never undefined); builders drop keys a caller left undefined. */
const definedOnly = (input: object): object => Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined))

const decodeSync = <A, I>(schema: Schema.Schema<A, I>, input: object): A => {
  const result = Schema.decodeUnknownEither(schema)(definedOnly(input), { errors: "all", onExcessProperty: "error" })
  if (result._tag === "Left") throw new DatasetDeclarationError({ issues: formatIssues(result.left) })
  return result.right
}

// ---------------------------------------------------------------------------------------------
// Builders: validate eagerly (a bad declaration fails where it is written) and fill the defaults.

type Options<S extends { readonly _tag: string }> = Omit<S, "_tag">

export const imageFolder = (
  path: string,
  options: Omit<Options<typeof ImageFolderDataset.Encoded>, "path">
): ImageFolderDataset => decodeSync(ImageFolderDataset, { ...options, _tag: "image-folder", path })

export const synthetic = (options: Options<typeof SyntheticDataset.Encoded>): SyntheticDataset =>
  decodeSync(SyntheticDataset, { ...options, _tag: "synthetic" })

export const webDataset = (
  shards: string | ReadonlyArray<string>,
  options: Omit<Options<typeof WebDatasetDataset.Encoded>, "shards">
): WebDatasetDataset => decodeSync(WebDatasetDataset, { ...options, _tag: "webdataset", shards })

/** The caption lengths of SARLO-80's `meta.json` (`caption.SHORT`, `caption.MID`, `caption.LONG`). */
export type Sarlo80Caption = "SHORT" | "MID" | "LONG"

/**
 * SARLO-80 (ONERA; Umbra spotlight SAR, 1024² slant-range patches at 80 cm) as published: WebDataset
 * shards `<split>/chunk_*\/shard-*.tar` with `.sar.npy` (complex64 SLC), `.sar.png` (8-bit amplitude)
 * and `.meta.json` (captions SHORT / MID / LONG). `dir` is one split's folder (every `.tar` below it
 * is read); the complex array is read as amplitude unless `image: "sar.png"`.
 */
export const sarlo80 = (
  dir: string,
  options:
    & { readonly caption: Sarlo80Caption; readonly image?: "sar.npy" | "sar.png" }
    & Omit<Options<typeof WebDatasetDataset.Encoded>, "shards" | "image" | "caption" | "unit">
): WebDatasetDataset => {
  const { caption, image, ...rest } = options
  if (!["SHORT", "MID", "LONG"].includes(caption)) {
    throw new DatasetDeclarationError({ issues: [`caption: must be one of "SHORT", "MID", "LONG" (got ${JSON.stringify(caption)})`] })
  }
  return webDataset(`${dir.replace(/\/+$/, "")}/**/*.tar`, { ...rest, image: image ?? "sar.npy", caption: `meta.json#caption.${caption}`, unit: "amplitude" })
}

export const meanStd = (
  options: { readonly k?: number; readonly statistics?: MeanStdStatistics } = {}
): MeanStdNormalisation => decodeSync(MeanStdNormalisation, { ...options, _tag: "mean-std" })

export const dbWindow = (min: number, max: number): DbWindowNormalisation => decodeSync(DbWindowNormalisation, { _tag: "db-window", min, max })

export const percentiles = (low = 1, high = 99): PercentileNormalisation => decodeSync(PercentileNormalisation, { _tag: "percentile", low, high })
