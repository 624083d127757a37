import { Effect, Schema } from "effect"
import { mkdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import type { SkippedFile, TrainingSample } from "../services/datasets.ts"

/**
 * The output of a prepare-data step, read by encode-latents, train and evaluate:
 *   index.json          { width, height, channels, samples: [{ id, source, caption, file }], skipped: [...] }
 *   pixels/<n>.f32      one sample: raw little-endian float32, HWC, in [-1, 1] (normalised, then 2x − 1)
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
}

export interface PreparedIndex {
  readonly width: number
  readonly height: number
  readonly channels: number
  readonly samples: ReadonlyArray<PreparedSample>
  readonly skipped: ReadonlyArray<SkippedFile>
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

/** Writes samples into `dir` as they come; `finish` writes the index. Call inside a step's work folder. */
export const preparedDatasetWriter = (dir: string) =>
  Effect.gen(function*() {
    yield* attempt(dir, "cannot create the pixels folder", () => mkdir(join(dir, "pixels"), { recursive: true }))
    const samples: Array<PreparedSample> = []
    const skipped: Array<SkippedFile> = []
    let shape: { width: number; height: number; channels: number } | undefined
    const add = (sample: TrainingSample) =>
      Effect.gen(function*() {
        if (shape === undefined) shape = { width: sample.width, height: sample.height, channels: sample.channels }
        else if (shape.width !== sample.width || shape.height !== sample.height || shape.channels !== sample.channels) {
          return yield* Effect.fail(new PreparedDataError({
            path: sample.source,
            reason: `sample is ${sample.width}×${sample.height}×${sample.channels}, the others ${shape.width}×${shape.height}×${shape.channels}`
          }))
        }
        const file = sampleFile(samples.length)
        const bytes = Buffer.from(sample.pixels.buffer, sample.pixels.byteOffset, sample.pixels.byteLength)
        yield* attempt(join(dir, file), "cannot write the sample", () => writeFile(join(dir, file), bytes))
        samples.push({ id: sample.id, source: sample.source, caption: sample.caption, file })
      })
    const skip = (file: SkippedFile) => Effect.sync(() => void skipped.push(file))
    const finish = Effect.gen(function*() {
      if (shape === undefined) {
        return yield* Effect.fail(new PreparedDataError({
          path: dir,
          reason: `the dataset gave no usable sample${skipped.length > 0 ? ` (${skipped.length} files skipped)` : ""}`
        }))
      }
      const index: PreparedIndex = { ...shape, samples, skipped }
      yield* attempt(dir, "cannot write the index", () => writeFile(join(dir, indexFile), JSON.stringify(index)))
      return index
    })
    return { add, skip, finish }
  })

export const readPreparedIndex = (dir: string): Effect.Effect<PreparedIndex, PreparedDataError> =>
  attempt(join(dir, indexFile), "cannot read the prepared-data index", () => readFile(join(dir, indexFile), "utf8")).pipe(
    Effect.map((text) => JSON.parse(text) as PreparedIndex)
  )

/** One sample's pixels (HWC, [-1, 1]). */
export const readPreparedPixels = (dir: string, sample: PreparedSample): Effect.Effect<Float32Array, PreparedDataError> =>
  attempt(join(dir, sample.file), "cannot read the sample", () => readFile(join(dir, sample.file))).pipe(
    Effect.map((buffer) => {
      const copy = new Float32Array(buffer.byteLength / 4)
      new Uint8Array(copy.buffer).set(buffer)
      return copy
    })
  )
