import { Context, Schema } from "effect"
import type { Effect } from "effect"

/**
 * A decoded raster: `channels` values per pixel, interleaved (row-major, HWC).
 * Values are the file's own numbers (0–255 for 8-bit, 0–65535 for 16-bit, floats as stored);
 * unit conversions and normalisation happen later, where the declaration says how.
 */
export interface Raster {
  readonly width: number
  readonly height: number
  readonly channels: number
  readonly data: Float32Array
  /** The file's declared no-data value (GDAL_NODATA), when it has one; NaN means NaN pixels. */
  readonly noData?: number
}

/** What a file holds, read from its header without decoding the pixels. */
export interface RasterInfo {
  readonly format: "png" | "jpeg" | "tiff"
  readonly width: number
  readonly height: number
  /** Bands in the file (before any band selection). */
  readonly bands: number
  /** "uint8" | "uint16" | "int16" | "float32" | "complex64" | … as stored. */
  readonly sampleType: string
  /** Declared no-data value from the file (GDAL_NODATA), when present. */
  readonly noData?: number
}

export interface FloatTiffOptions {
  /** Written as the GDAL_NODATA tag. */
  readonly noData?: number
}

/**
 * The largest image decoded unless a reader says otherwise: 16384 × 16384 pixels (1 GiB as one
 * float32 band), above any SAR tile; a bigger header is refused before decoding (as Pillow's
 * MAX_IMAGE_PIXELS and sharp's limitInputPixels do).
 */
export const defaultMaxPixels = 16384 * 16384

export interface ReadOptions {
  /** Zero-based band to keep from a multi-band file; all bands when absent. */
  readonly band?: number
  /** Images of more pixels are refused from their header, before decoding ("too-large"). Default: `defaultMaxPixels`. */
  readonly maxPixels?: number
}

/**
 * Why a file could not be decoded: it cannot be opened, has no bytes, ends before its data does,
 * holds inconsistent data, is of a kind sardine does not read, lacks the requested band, or
 * declares more pixels than the reader's limit.
 */
export const DecodeProblem = Schema.Literal("unreadable", "empty", "truncated", "corrupt", "unsupported", "band-out-of-range", "too-large")
export type DecodeProblem = typeof DecodeProblem.Type

export class ImageDecodeError extends Schema.TaggedError<ImageDecodeError>()("ImageDecodeError", {
  file: Schema.String,
  reason: Schema.String,
  kind: Schema.optional(DecodeProblem)
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

export class ImageWriteError extends Schema.TaggedError<ImageWriteError>()("ImageWriteError", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

/** Reading and writing image files. Writes are atomic: temp file, then rename. */
export class ImageIO extends Context.Tag("sardine/ImageIO")<ImageIO, {
  readonly info: (file: string) => Effect.Effect<RasterInfo, ImageDecodeError>
  readonly read: (file: string, options?: ReadOptions) => Effect.Effect<Raster, ImageDecodeError>
  /** Single- or multi-channel float32 TIFF, values as given. */
  readonly writeFloatTiff: (
    file: string,
    raster: Raster,
    options?: FloatTiffOptions
  ) => Effect.Effect<void, ImageWriteError>
  /** 8-bit PNG; values are clamped to [0, 255] and rounded. 1 channel = grey, 3 = RGB. */
  readonly writePng8: (file: string, raster: Raster) => Effect.Effect<void, ImageWriteError>
  /** 16-bit PNG; values are clamped to [0, 65535] and rounded. */
  readonly writePng16: (file: string, raster: Raster) => Effect.Effect<void, ImageWriteError>
}>() {}
