import { Effect, Option } from "effect"
import { MetricInputError, type SampleImage } from "../metrics/metric-input.ts"
import { SarUnit, toAmplitude } from "../sar/units.ts"
import { ImageIO, type ImageDecodeError, type Raster } from "../services/image-io.ts"

/** Reading an image file as linear amplitude for the metric commands (`stats`, `compare`). */

const position = (width: number, index: number) => `row ${Math.floor(index / width)}, column ${index % width}`

/** The one band to use: the file's only band, the colour bands when they are all equal, else a failure. */
const greyBand = (file: string, raster: Raster): Effect.Effect<Float32Array, MetricInputError> => {
  const { channels, data } = raster
  if (channels === 1) return Effect.succeed(data)
  // Grey + alpha, RGB, RGBA: the alpha band carries no amplitude.
  const colours = channels === 2 ? 1 : Math.min(channels, 3)
  const grey = new Float32Array(raster.width * raster.height)
  for (let p = 0; p < grey.length; p++) {
    const v = data[p * channels]!
    for (let c = 1; c < colours; c++) {
      if (data[p * channels + c] !== v) {
        return Effect.fail(
          new MetricInputError({
            input: file,
            reason: `has ${channels} bands whose values differ (at ${position(raster.width, p)}); choose one with --band`
          })
        )
      }
    }
    grey[p] = v
  }
  return Effect.succeed(grey)
}

/** 1 where a pixel is not the file's declared no-data value (a NaN no-data value marks NaN pixels). */
const noDataMask = (values: Float32Array, noData: number): Uint8Array => {
  const mask = new Uint8Array(values.length)
  const isNoData = Number.isNaN(noData) ? (v: number) => Number.isNaN(v) : (v: number) => v === noData
  for (let i = 0; i < values.length; i++) mask[i] = isNoData(values[i]!) ? 0 : 1
  return mask
}

/** Fails on a value that has no amplitude: not finite, or negative in a linear unit. */
const checkValues = (file: string, values: Float32Array, width: number, unit: SarUnit, mask: Uint8Array | undefined) => {
  for (let i = 0; i < values.length; i++) {
    if (mask !== undefined && mask[i] === 0) continue
    const v = values[i]!
    if (!Number.isFinite(v)) {
      return Effect.fail(new MetricInputError({ input: file, reason: `value ${v} at ${position(width, i)} is not a finite number` }))
    }
    if (v < 0 && unit !== "db") {
      return Effect.fail(new MetricInputError({ input: file, reason: `${unit} ${v} at ${position(width, i)} is negative` }))
    }
  }
  return Effect.void
}

/**
 * The file's pixels as linear amplitude, with pixels equal to the file's no-data value
 * (GDAL_NODATA) masked out. NaN, infinite or (for amplitude and intensity) negative values fail,
 * naming the file and the pixel.
 */
export const readAmplitudeImage = (
  file: string,
  unit: SarUnit,
  band: Option.Option<number>
): Effect.Effect<SampleImage, ImageDecodeError | MetricInputError, ImageIO> =>
  Effect.gen(function*() {
    const io = yield* ImageIO
    const info = yield* io.info(file)
    const raster = yield* io.read(file, Option.match(band, { onNone: () => ({}), onSome: (b) => ({ band: b }) }))
    const values = yield* greyBand(file, raster)
    const marked = info.noData === undefined ? undefined : noDataMask(values, info.noData)
    if (marked !== undefined && !marked.includes(1)) {
      return yield* new MetricInputError({ input: file, reason: `every pixel is the no-data value ${info.noData}` })
    }
    const mask = marked !== undefined && marked.includes(0) ? marked : undefined
    yield* checkValues(file, values, raster.width, unit, mask)
    return {
      name: file,
      width: raster.width,
      height: raster.height,
      data: toAmplitude(values, unit),
      ...(mask !== undefined ? { mask } : {})
    }
  })
