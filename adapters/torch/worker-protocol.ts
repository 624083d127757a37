import { Schema } from "effect"

/**
 * The messages of the torch worker (adapters/torch/worker/sardine_torch/protocol.py; docs/torch-worker.md):
 * one JSON object per line on the worker's stdout, each decoded here. A run ends with exactly one of
 * `result`, `error` or `stopped`.
 */

export const PROTOCOL = 1

export const Hello = Schema.Struct({
  type: Schema.Literal("hello"),
  protocol: Schema.Literal(PROTOCOL),
  python: Schema.String,
  executable: Schema.String,
  versions: Schema.Record({ key: Schema.String, value: Schema.NullOr(Schema.String) }),
  bitsandbytes: Schema.NullOr(Schema.String),
  cuda: Schema.NullOr(Schema.String),
  devices: Schema.Array(Schema.Struct({ name: Schema.String, memoryBytes: Schema.Number, bf16: Schema.NullOr(Schema.Boolean) })),
  device: Schema.String,
  threads: Schema.Int
})
export type Hello = typeof Hello.Type

export const Log = Schema.Struct({ type: Schema.Literal("log"), message: Schema.String })

export const Progress = Schema.Struct({ type: Schema.Literal("progress"), done: Schema.Int, total: Schema.Int, unit: Schema.String })

/** A training step's metrics; a non-finite value (a diverged loss) arrives as null. */
export const Metrics = Schema.Struct({
  type: Schema.Literal("metrics"),
  step: Schema.Int,
  values: Schema.Record({ key: Schema.String, value: Schema.NullOr(Schema.Number) })
})

const RawImage = {
  /** A raw little-endian float32 file of the normalised amplitude, [height, width], in [0, 1]. */
  file: Schema.String,
  width: Schema.Int,
  height: Schema.Int
}

/** One generated sample (generate): prompt × seed × replicate. */
export const Sample = Schema.Struct({
  type: Schema.Literal("sample"),
  promptIndex: Schema.Int,
  seed: Schema.Int,
  replicate: Schema.Int,
  ...RawImage
})
export type Sample = typeof Sample.Type

/** One validation image (train.validationPrompts). */
export const ValidationImage = Schema.Struct({
  type: Schema.Literal("image"),
  step: Schema.Int,
  promptIndex: Schema.Int,
  prompt: Schema.String,
  ...RawImage
})
export type ValidationImage = typeof ValidationImage.Type

export const Result = Schema.Struct({ type: Schema.Literal("result"), value: Schema.Unknown })

export const Failure = Schema.Struct({
  type: Schema.Literal("error"),
  exception: Schema.String,
  message: Schema.String,
  frames: Schema.Array(Schema.Struct({ file: Schema.String, line: Schema.Int, function: Schema.String, code: Schema.String }))
})
export type Failure = typeof Failure.Type

export const Stopped = Schema.Struct({ type: Schema.Literal("stopped"), reason: Schema.String })

export const WorkerMessage = Schema.Union(Hello, Log, Progress, Metrics, Sample, ValidationImage, Result, Failure, Stopped)
export type WorkerMessage = typeof WorkerMessage.Type

export const decodeWorkerMessage = Schema.decodeUnknownEither(Schema.parseJson(WorkerMessage))
