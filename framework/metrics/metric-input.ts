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
 * Checks the shape, that the mask selects at least one pixel, and that every selected value is
 * finite. Returns the number of selected pixels.
 */
export const checkSampleImage = (image: SampleImage): Effect.Effect<number, MetricInputError> => {
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
  let selected = 0
  for (let i = 0; i < data.length; i++) {
    if (mask !== undefined) {
      if (mask[i] > 1) return fail(`mask value ${mask[i]} at ${position(image, i)} is neither 0 nor 1`)
      if (mask[i] === 0) continue
    }
    if (!Number.isFinite(data[i])) return fail(`value ${data[i]} at ${position(image, i)} is not a finite number`)
    selected++
  }
  if (selected === 0) return fail("the mask selects no pixel")
  return Effect.succeed(selected)
}

/** The selected values, in row-major order (the data itself when there is no mask). */
export const selectedValues = (image: SampleImage, count: number): Float32Array => {
  const { data, mask } = image
  if (mask === undefined) return data
  const out = new Float32Array(count)
  let k = 0
  for (let i = 0; i < data.length; i++) if (mask[i] !== 0) out[k++] = data[i]
  return out
}
