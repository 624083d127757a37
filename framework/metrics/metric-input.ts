import { Effect, Schema } from "effect"

/** A metric refused its input; `input` names the file or data set so the user can find it. */
export class MetricInputError extends Schema.TaggedError<MetricInputError>()("MetricInputError", {
  input: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.input}: ${this.reason}`
  }
}

/**
 * One band of an image, row-major, with an optional mask (1 = the pixel counts, 0 = it does not).
 * `name` is what errors print: the file path, or a label for data made in memory.
 */
export interface SampleImage {
  readonly name: string
  readonly width: number
  readonly height: number
  readonly data: Float32Array
  readonly mask?: Uint8Array
}

const position = (image: SampleImage, index: number) =>
  `row ${Math.floor(index / image.width)}, column ${index % image.width}`

/**
 * Checks the shape, that the mask holds only 0 and 1 and selects at least one pixel, and that
 * every selected value is finite; sums the selected values on the way (float64, pixel order).
 * The loops only sum: a NaN or infinity makes the sum non-finite (float32 values cannot overflow
 * a float64 sum), and only then is the offending pixel searched for. A test per pixel would make
 * this pass several times slower.
 */
const scan = (image: SampleImage): Effect.Effect<{ readonly count: number; readonly sum: number }, MetricInputError> => {
  const fail = (reason: string) => Effect.fail(new MetricInputError({ input: image.name, reason }))
  const { width, height, data, mask } = image
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    return fail(`width and height must be positive integers, got ${width} × ${height}`)
  }
  if (data.length !== width * height) {
    return fail(`has ${data.length} values, but ${width} × ${height} = ${width * height} were expected`)
  }
  if (mask !== undefined && mask.length !== data.length) {
    return fail(`mask has ${mask.length} entries, but the image has ${data.length} pixels`)
  }
  let count = 0
  let sum = 0
  if (mask === undefined) {
    for (let i = 0; i < data.length; i++) sum += data[i]
    count = data.length
  } else {
    let bits = 0
    for (let i = 0; i < data.length; i++) {
      const m = mask[i]
      bits |= m
      if (m === 1) {
        sum += data[i]
        count++
      }
    }
    if (bits > 1) {
      const i = mask.findIndex((m) => m > 1)
      return fail(`mask value ${mask[i]} at ${position(image, i)} is neither 0 nor 1`)
    }
  }
  if (!Number.isFinite(sum)) {
    const i = data.findIndex((v, k) => (mask === undefined || mask[k] === 1) && !Number.isFinite(v))
    return fail(`value ${data[i]} at ${position(image, i)} is not a finite number`)
  }
  if (count === 0) return fail("the mask selects no pixel")
  return Effect.succeed({ count, sum })
}

/** Checks the image (see `scan`); returns the number of selected pixels. */
export const checkSampleImage = (image: SampleImage): Effect.Effect<number, MetricInputError> =>
  Effect.map(scan(image), ({ count }) => count)

/** The selected values, in row-major order (the data itself when there is no mask). */
export const selectedValues = (image: SampleImage, count: number): Float32Array => {
  const { data, mask } = image
  if (mask === undefined) return data
  const out = new Float32Array(count)
  let k = 0
  for (let i = 0; i < data.length; i++) if (mask[i] !== 0) out[k++] = data[i]
  return out
}

export interface CheckedMoments {
  readonly count: number
  readonly mean: number
  /** Population standard deviation. */
  readonly std: number
}

/**
 * `checkSampleImage` plus the mean and population std of the selected values, in two passes.
 * The arithmetic (float64 running sum, then squared deviations from the mean) is that of
 * framework/sar/normalisation.ts's `amplitudeStatistics`, bit for bit (a test holds the two
 * together); fused with the check here because the texture chain's speed goal counts passes.
 */
export const checkedMoments = (image: SampleImage): Effect.Effect<CheckedMoments, MetricInputError> =>
  Effect.map(scan(image), ({ count, sum }) => {
    const { data, mask } = image
    const mean = sum / count
    let m2 = 0
    if (mask === undefined) {
      for (let i = 0; i < data.length; i++) {
        const d = data[i] - mean
        m2 += d * d
      }
    } else {
      for (let i = 0; i < data.length; i++) {
        if (mask[i] === 1) {
          const d = data[i] - mean
          m2 += d * d
        }
      }
    }
    return { count, mean, std: Math.sqrt(m2 / count) }
  })
