import { Effect, Schema } from "effect"
// node:fs through Effect.tryPromise (errors typed): its readers are called inside the tfjs trainer's loops and by
// tests that provide no FileSystem.
import { mkdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import type { ClassMap, ConditioningInput } from "../declaration/conditioning.ts"
import type { SkippedFile, TrainingSample } from "../services/datasets.ts"

/**
 * The output of a prepare-data step, read by encode-latents, train and evaluate:
 *   index.json          { width, height, channels, samples: [{ id, source, caption, file }], skipped: [...] }
 *   pixels/<n>.f32      one sample: raw little-endian float32, HWC, in [-1, 1] (normalised, then 2x − 1)
 *   conditions/<n>.f32  its conditioning image when the data is prepared for a ControlNet: float32 HWC in [0, 1]
 * Raw float32 keeps reading cheap for the training loop (no decoding), and one file per sample
 * keeps a 100k-tile dataset out of memory.
 */
export const indexFile = "index.json"

export interface PreparedSample {
  readonly id: string
  readonly source: string
  readonly caption: string
  /** Relative to the folder. */
  readonly file: string
  /** The conditioning image (conditions/<n>.f32), relative to the folder. */
  readonly condition?: string
}

/** What the conditioning images of a prepared dataset are: the ControlNet's input, from which column, with which classes. */
export interface PreparedConditioning {
  readonly input: ConditioningInput
  readonly column: string
  readonly channels: number
  /** Label maps: pixel value → class, channel k being the k-th value in ascending order. */
  readonly classes?: ClassMap
}

export interface PreparedIndex {
  readonly width: number
  readonly height: number
  readonly channels: number
  readonly samples: ReadonlyArray<PreparedSample>
  readonly skipped: ReadonlyArray<SkippedFile>
  readonly conditioning?: PreparedConditioning
}

export class PreparedDataError extends Schema.TaggedError<PreparedDataError>()("PreparedDataError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

const attempt = <A>(path: string, what: string, run: () => Promise<A>) =>
  Effect.tryPromise({ try: run, catch: (e) => new PreparedDataError({ path, reason: `${what}: ${(e as Error).message}` }) })

const sampleFile = (n: number) => `pixels/${String(n).padStart(7, "0")}.f32`
const conditionFile = (n: number) => `conditions/${String(n).padStart(7, "0")}.f32`

const writeFloats = (dir: string, file: string, values: Float32Array, what: string) =>
  attempt(join(dir, file), `cannot write the ${what}`, () => writeFile(join(dir, file), Buffer.from(values.buffer, values.byteOffset, values.byteLength)))

/**
 * Writes samples into `dir` as they come; `finish` writes the index. Call inside a step's work folder.
 * With `conditioning` (its channels aside), every sample must bring its conditioning image.
 */
export const preparedDatasetWriter = (dir: string, conditioning?: Omit<PreparedConditioning, "channels">) =>
  Effect.gen(function*() {
    yield* attempt(dir, "cannot create the pixels folder", () => mkdir(join(dir, "pixels"), { recursive: true }))
    if (conditioning !== undefined) yield* attempt(dir, "cannot create the conditions folder", () => mkdir(join(dir, "conditions"), { recursive: true }))
    let conditionChannels: number | undefined
    const samples: Array<PreparedSample> = []
    const skipped: Array<SkippedFile> = []
    let shape: { width: number; height: number; channels: number } | undefined
    const add = (sample: TrainingSample) =>
      Effect.gen(function*() {
        if (shape === undefined) shape = { width: sample.width, height: sample.height, channels: sample.channels }
        else if (shape.width !== sample.width || shape.height !== sample.height || shape.channels !== sample.channels) {
          return yield* Effect.fail(
            new PreparedDataError({
              path: sample.source,
              reason: `sample is ${sample.width}×${sample.height}×${sample.channels}, the others ${shape.width}×${shape.height}×${shape.channels}`
            })
          )
        }
        const file = sampleFile(samples.length)
        yield* writeFloats(dir, file, sample.pixels, "sample")
        if (conditioning === undefined) return void samples.push({ id: sample.id, source: sample.source, caption: sample.caption, file })
        const condition = sample.conditioning
        if (condition === undefined || condition.width !== sample.width || condition.height !== sample.height) {
          return yield* Effect.fail(new PreparedDataError({ path: sample.source, reason: `has no conditioning image of its size (${conditioning.column})` }))
        }
        conditionChannels ??= condition.channels
        if (condition.channels !== conditionChannels) {
          return yield* Effect.fail(
            new PreparedDataError({
              path: sample.source,
              reason: `its conditioning image has ${condition.channels} channels, the others ${conditionChannels}`
            })
          )
        }
        yield* writeFloats(dir, conditionFile(samples.length), condition.data, "conditioning image")
        samples.push({ id: sample.id, source: sample.source, caption: sample.caption, file, condition: conditionFile(samples.length) })
      })
    const skip = (file: SkippedFile) => Effect.sync(() => void skipped.push(file))
    const finish = Effect.gen(function*() {
      if (shape === undefined) {
        return yield* Effect.fail(
          new PreparedDataError({
            path: dir,
            reason: `the dataset gave no usable sample${skipped.length > 0 ? ` (${skipped.length} files skipped)` : ""}`
          })
        )
      }
      const index: PreparedIndex = {
        ...shape,
        samples,
        skipped,
        ...(conditioning === undefined ? {} : { conditioning: { ...conditioning, channels: conditionChannels! } })
      }
      yield* attempt(dir, "cannot write the index", () => writeFile(join(dir, indexFile), JSON.stringify(index)))
      return index
    })
    return { add, skip, finish }
  })

export const readPreparedIndex = (dir: string): Effect.Effect<PreparedIndex, PreparedDataError> =>
  attempt(join(dir, indexFile), "cannot read the prepared-data index", () => readFile(join(dir, indexFile), "utf8")).pipe(
    Effect.flatMap((text) =>
      Effect.try({
        try: () => JSON.parse(text) as PreparedIndex,
        catch: (e) => new PreparedDataError({ path: join(dir, indexFile), reason: `the prepared-data index is not JSON: ${(e as Error).message}` })
      })
    )
  )

const readFloats = (dir: string, file: string, what: string): Effect.Effect<Float32Array, PreparedDataError> =>
  attempt(join(dir, file), `cannot read the ${what}`, () => readFile(join(dir, file))).pipe(
    Effect.map((buffer) => {
      const copy = new Float32Array(buffer.byteLength / 4)
      new Uint8Array(copy.buffer).set(buffer)
      return copy
    })
  )

/** One sample's pixels (HWC, [-1, 1]). */
export const readPreparedPixels = (dir: string, sample: PreparedSample): Effect.Effect<Float32Array, PreparedDataError> =>
  readFloats(dir, sample.file, "sample")

/** One sample's conditioning image (HWC, [0, 1], PreparedIndex.conditioning.channels). */
export const readPreparedCondition = (dir: string, sample: PreparedSample): Effect.Effect<Float32Array, PreparedDataError> =>
  sample.condition === undefined
    ? Effect.fail(new PreparedDataError({ path: join(dir, sample.file), reason: "the prepared sample has no conditioning image" }))
    : readFloats(dir, sample.condition, "conditioning image")
