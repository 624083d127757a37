import { Effect, Schema } from "effect"
import { pairwiseSquaredDeviations, pairwiseSum } from "./pairwise-sum.ts"

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

const position = (image: SampleImage, index: number) => `row ${Math.floor(index / image.width)}, column ${index % image.width}`

interface Scanned {
  /** The selected values in row-major order (the data itself without a mask). */
  readonly values: Float32Array
  /** Their sum in numpy's pairwise order. */
  readonly sum: number
}

/**
 * Checks the shape, that the mask holds only 0 and 1 and selects at least one pixel, and that
 * every selected value is finite. The finiteness test is the sum itself: a NaN or infinity makes
 * it non-finite (float32 values cannot overflow a float64 sum), and only then is the offending
 * pixel searched for; a test per pixel would make this pass several times slower.
 */
const scan = (image: SampleImage): Effect.Effect<Scanned, MetricInputError> => {
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
  let values = data
  if (mask !== undefined) {
    let bits = 0
    let count = 0
    for (let i = 0; i < mask.length; i++) {
      bits |= mask[i]!
      count += mask[i]!
    }
    if (bits > 1) {
      const i = mask.findIndex((m) => m > 1)
      return fail(`mask value ${mask[i]} at ${position(image, i)} is neither 0 nor 1`)
    }
    if (count === 0) return fail("the mask selects no pixel")
    values = selectedValues(image, count)
  }
  const sum = pairwiseSum(values, 0, values.length)
  if (!Number.isFinite(sum)) {
    const i = data.findIndex((v, k) => (mask === undefined || mask[k] === 1) && !Number.isFinite(v))
    return fail(`value ${data[i]} at ${position(image, i)} is not a finite number`)
  }
  return Effect.succeed({ values, sum })
}

/** Checks the image (see `scan`); returns the number of selected pixels. */
export const checkSampleImage = (image: SampleImage): Effect.Effect<number, MetricInputError> => Effect.map(scan(image), ({ values }) => values.length)

/** The selected values, in row-major order (the data itself when there is no mask). */
export const selectedValues = (image: SampleImage, count: number): Float32Array => {
  const { data, mask } = image
  if (mask === undefined) return data
  const out = new Float32Array(count)
  let k = 0
  for (let i = 0; i < data.length; i++) if (mask[i] !== 0) out[k++] = data[i]!
  return out
}

export interface CheckedMoments {
  readonly count: number
  readonly mean: number
  /** Population standard deviation. */
  readonly std: number
}

/**
 * `checkSampleImage` plus the mean and population std of the selected values, summed in numpy's
 * pairwise order: equal to `a.mean()` and `a.std()` of the selected values as float64, bit for bit.
 */
export const checkedMoments = (image: SampleImage): Effect.Effect<CheckedMoments, MetricInputError> =>
  Effect.map(scan(image), ({ sum, values }) => {
    const count = values.length
    const mean = sum / count
    return { count, mean, std: Math.sqrt(pairwiseSquaredDeviations(values, 0, count, mean) / count) }
  })
