import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect } from "effect"
import type { Raster } from "../../framework/services/image-io.ts"
import { ScorerError } from "../../framework/services/scorer.ts"

/**
 * CLIP's image preprocessing on float images in [0, 1]: resize so the shortest edge is `size`
 * (bicubic with antialiasing, computed as Pillow computes float "F" images: separable, horizontal
 * pass first, float64 sums stored as float32), centre crop as torchvision does (offsets rounded
 * half to even), then (x − mean) / std per channel in float32. Grey is repeated into R, G and B.
 */
export interface ClipImageConfig {
  /** Target of the shortest edge. */
  readonly size: number
  readonly cropHeight: number
  readonly cropWidth: number
  readonly mean: readonly [number, number, number]
  readonly std: readonly [number, number, number]
}

/** Pillow's bicubic kernel (a = −0.5). */
const bicubic = (x: number) => {
  const a = -0.5
  const t = Math.abs(x)
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a
  return 0
}

interface Coefficients {
  /** First input index of each output position. */
  readonly first: Int32Array
  /** Number of input samples of each output position. */
  readonly count: Int32Array
  /** `width` weights per output position. */
  readonly weights: Float64Array
  readonly width: number
}

/** Pillow's `precompute_coeffs` for a whole-image box: normalised kernel weights per output index. */
const coefficients = (inSize: number, outSize: number): Coefficients => {
  const scale = inSize / outSize
  const filterScale = Math.max(scale, 1)
  const support = 2 * filterScale
  const width = Math.ceil(support) * 2 + 1
  const first = new Int32Array(outSize)
  const count = new Int32Array(outSize)
  const weights = new Float64Array(outSize * width)
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale
    const lo = Math.max(0, Math.trunc(center - support + 0.5))
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5))
    let total = 0
    for (let x = 0; x < hi - lo; x++) {
      const w = bicubic((x + lo - center + 0.5) / filterScale)
      weights[o * width + x] = w
      total += w
    }
    if (total !== 0) { for (let x = 0; x < hi - lo; x++) weights[o * width + x]! /= total }
    first[o] = lo
    count[o] = hi - lo
  }
  return { first, count, weights, width }
}

/** One band (row-major) resized to outWidth × outHeight, as Pillow's `Image.resize(…, BICUBIC)` on mode "F". */
export const resizeBicubic = (band: Float32Array, width: number, height: number, outWidth: number, outHeight: number): Float32Array => {
  let source = band
  let rowOffset = 0
  const vertical = coefficients(height, outHeight)
  if (outWidth !== width) {
    // Only the rows the vertical pass reads.
    const firstRow = vertical.first[0]!
    const lastRow = vertical.first[outHeight - 1]! + vertical.count[outHeight - 1]!
    const h = coefficients(width, outWidth)
    const temp = new Float32Array(outWidth * (lastRow - firstRow))
    for (let y = firstRow; y < lastRow; y++) {
      for (let o = 0; o < outWidth; o++) {
        let s = 0
        const lo = h.first[o]!
        for (let x = 0; x < h.count[o]!; x++) s += band[y * width + lo + x]! * h.weights[o * h.width + x]!
        temp[(y - firstRow) * outWidth + o] = s
      }
    }
    source = temp
    rowOffset = firstRow
  }
  if (outHeight === height) return outWidth === width ? band.slice() : source
  const out = new Float32Array(outWidth * outHeight)
  for (let o = 0; o < outHeight; o++) {
    const lo = vertical.first[o]! - rowOffset
    for (let c = 0; c < outWidth; c++) {
      let s = 0
      for (let y = 0; y < vertical.count[o]!; y++) s += source[(lo + y) * outWidth + c]! * vertical.weights[o * vertical.width + y]!
      out[o * outWidth + c] = s
    }
  }
  return out
}

/** Python's round(): halves go to the even neighbour. */
const roundHalfEven = (x: number) => {
  const r = Math.round(x)
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r
}

/** torchvision's Resize(size) output size: the shortest edge becomes `size`, the other scales and truncates. */
export const resizedSize = (width: number, height: number, size: number) =>
  width <= height
    ? { width: size, height: Math.trunc((size * height) / width) }
    : { width: Math.trunc((size * width) / height), height: size }

/** One band of an image, resized and centre-cropped. */
const croppedBand = (image: Raster, band: number, config: ClipImageConfig): Float32Array => {
  const { cropHeight, cropWidth } = config
  const values = new Float32Array(image.width * image.height)
  for (let i = 0; i < values.length; i++) values[i] = image.data[i * image.channels + band]!
  const target = resizedSize(image.width, image.height, config.size)
  const resized = resizeBicubic(values, image.width, image.height, target.width, target.height)
  const top = roundHalfEven((target.height - cropHeight) / 2)
  const left = roundHalfEven((target.width - cropWidth) / 2)
  const out = new Float32Array(cropHeight * cropWidth)
  for (let y = 0; y < cropHeight; y++) {
    for (let x = 0; x < cropWidth; x++) out[y * cropWidth + x] = resized[(top + y) * target.width + left + x]!
  }
  return out
}

/** The images as one [count, 3, cropHeight, cropWidth] float32 batch. Images must have 1 or 3 bands. */
export const clipPixelValues = (images: ReadonlyArray<Raster>, config: ClipImageConfig): Float32Array => {
  const plane = config.cropHeight * config.cropWidth
  const out = new Float32Array(images.length * 3 * plane)
  const mean = config.mean.map(Math.fround)
  const std = config.std.map(Math.fround)
  images.forEach((image, n) => {
    const bands = image.channels === 1 ? [croppedBand(image, 0, config)] : [0, 1, 2].map((b) => croppedBand(image, b, config))
    for (let channel = 0; channel < 3; channel++) {
      const band = bands[image.channels === 1 ? 0 : channel]!
      const base = (n * 3 + channel) * plane
      // (x − mean) / std on float32 arrays rounds after each step; so does this.
      for (let i = 0; i < plane; i++) out[base + i] = Math.fround(Math.fround(band[i]! - mean[channel]!) / std[channel]!)
    }
  })
  return out
}

const problem = (file: string, reason: string) => new ScorerError({ file, reason })

/**
 * The preprocessing of a CLIP model folder: transformers' CLIPImageProcessor fields of `file` (preprocessor_config.json).
 * Read through Node's FileSystem, provided here: the scorers' operations require nothing.
 */
export const readClipImageConfig = (file: string): Effect.Effect<ClipImageConfig, ScorerError> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(file)).pipe(
    Effect.mapError((e) => problem(file, `cannot read: ${e.description ?? e.message}`)),
    Effect.provide(NodeFileSystem.layer),
    Effect.flatMap((text) =>
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- transformers' file, checked field by field below
      Effect.try({ try: () => JSON.parse(text) as Record<string, any>, catch: (e) => problem(file, `not valid JSON (${(e as Error).message})`) })
    ),
    Effect.flatMap((json) => {
      const size = typeof json.size === "number" ? json.size : json.size?.shortest_edge
      const crop = typeof json.crop_size === "number" ? { height: json.crop_size, width: json.crop_size } : json.crop_size
      const triple = (value: unknown) => Array.isArray(value) && value.length === 3 && value.every((v) => typeof v === "number" && Number.isFinite(v))
      if (!(Number.isInteger(size) && size > 0)) return Effect.fail(problem(file, "size.shortest_edge must be a positive integer"))
      if (!(Number.isInteger(crop?.height) && Number.isInteger(crop?.width) && crop.height > 0 && crop.width > 0)) {
        return Effect.fail(problem(file, "crop_size must have positive integer height and width"))
      }
      if (crop.height > size || crop.width > size) {
        return Effect.fail(problem(file, `crop_size ${crop.height} × ${crop.width} exceeds the resized shortest edge ${size}`))
      }
      if (!triple(json.image_mean)) return Effect.fail(problem(file, "image_mean must be three numbers"))
      if (!triple(json.image_std) || json.image_std.some((v: number) => !(v > 0))) return Effect.fail(problem(file, "image_std must be three positive numbers"))
      const config: ClipImageConfig = { size, cropHeight: crop.height, cropWidth: crop.width, mean: json.image_mean, std: json.image_std }
      return Effect.succeed(config)
    })
  )

/** An image the scorers take: one (grey) or three (RGB) bands, values in [0, 1]; `index` names it in the error. */
export const checkClipImage = (image: Raster, index: number): Effect.Effect<void, ScorerError> => {
  const fail = (reason: string) => Effect.fail(problem(`image ${index}`, reason))
  if (image.channels !== 1 && image.channels !== 3) return fail(`has ${image.channels} bands; the scorer takes grey (1) or RGB (3)`)
  for (let i = 0; i < image.data.length; i++) {
    const v = image.data[i]!
    if (!(v >= 0 && v <= 1)) return fail(`value ${v} at pixel ${Math.floor(i / image.channels)} is outside [0, 1] (divide 8-bit pixels by 255)`)
  }
  return Effect.void
}
