import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import type { SafetensorsError } from "../safetensors/safetensors-error.ts"
import { openSafetensors, type SafetensorsReader } from "../safetensors/safetensors-reader.ts"
import { writeSafetensors, type WritableDtype } from "../safetensors/safetensors-writer.ts"
import type { ParameterMap, ParameterSpec } from "./layers.ts"
import { tfjsTensor, toTorchLayout } from "./layout.ts"

/** Listed names beyond this are counted, not printed. */
const SHOWN = 12

const preview = (label: string, names: ReadonlyArray<string>) =>
  names.length === 0 ? [] : [`${names.length} ${label}: ${names.slice(0, SHOWN).join(", ")}${names.length > SHOWN ? ", …" : ""}`]

/** A checkpoint whose tensors do not match the model its config describes. */
export class CheckpointMismatchError extends Schema.TaggedError<CheckpointMismatchError>()("CheckpointMismatchError", {
  component: Schema.String,
  missing: Schema.Array(Schema.String),
  unexpected: Schema.Array(Schema.String),
  misshaped: Schema.Array(Schema.Struct({ name: Schema.String, expected: Schema.Array(Schema.Number), found: Schema.Array(Schema.Number) }))
}) {
  override get message() {
    const parts = [
      ...preview("missing", this.missing),
      ...preview("unexpected", this.unexpected),
      ...preview("mis-shaped", this.misshaped.map((m) => `${m.name} (expected [${m.expected}], found [${m.found}])`))
    ]
    return `${this.component}: the weights do not match the config — ${parts.join("; ")}`
  }
}

export interface CheckpointNaming {
  /** Maps a name found in the file to the model's name (legacy or prefix-less checkpoints). */
  readonly rename?: (name: string) => string
  /** Names in the file the reference library drops without complaint (e.g. `position_ids` buffers). */
  readonly ignore?: (name: string) => boolean
}

/**
 * Reads the parameters `specs` describes from safetensors `files` (one component, possibly sharded),
 * converting each to tfjs layout as it streams in (at most two tensors in flight besides the result).
 * Names and shapes are checked against the specs before any tensor data is read.
 */
export const loadParameters = (
  component: string,
  specs: ReadonlyArray<ParameterSpec>,
  files: ReadonlyArray<string>,
  naming: CheckpointNaming = {}
): Effect.Effect<ParameterMap, SafetensorsError | CheckpointMismatchError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const readers = yield* Effect.forEach(files, openSafetensors)
      const found = new Map<string, { readonly reader: SafetensorsReader; readonly stored: string; readonly shape: ReadonlyArray<number> }>()
      const unexpected: Array<string> = []
      for (const reader of readers) {
        for (const tensor of reader.header.tensors) {
          if (naming.ignore?.(tensor.name)) continue
          const name = naming.rename?.(tensor.name) ?? tensor.name
          found.set(name, { reader, stored: tensor.name, shape: tensor.shape })
        }
      }
      const wanted = new Map(specs.map((s) => [s.name, s]))
      for (const name of found.keys()) if (!wanted.has(name)) unexpected.push(name)
      const missing = specs.filter((s) => !found.has(s.name)).map((s) => s.name)
      const misshaped = specs.flatMap((s) => {
        const f = found.get(s.name)
        return f !== undefined && (f.shape.length !== s.shape.length || f.shape.some((d, i) => d !== s.shape[i]))
          ? [{ name: s.name, expected: s.shape.slice(), found: f.shape.slice() }]
          : []
      })
      if (missing.length + unexpected.length + misshaped.length > 0) {
        return yield* new CheckpointMismatchError({ component, missing, unexpected: unexpected.sort(), misshaped })
      }
      const tensors: Array<tf.Tensor | undefined> = specs.map(() => undefined)
      // Two at a time: the next tensor is read (on libuv's threads) while this one is converted.
      yield* Effect.forEach(specs, (spec, i) =>
        Effect.gen(function*() {
          const source = found.get(spec.name)!
          const torch = yield* source.reader.readFloat32(source.stored)
          tensors[i] = tfjsTensor(spec, torch)
        }), { concurrency: 2, discard: true }).pipe(
          Effect.onError(() => Effect.sync(() => tensors.forEach((t) => t?.dispose())))
        )
      return new Map(specs.map((spec, i) => [spec.name, tensors[i]!]))
    })
  )

/**
 * Writes parameters back as a safetensors checkpoint in torch layout under their state-dict names,
 * so diffusers / transformers load it (temporary file, then rename).
 */
export const saveParameters = (
  file: string,
  specs: ReadonlyArray<ParameterSpec>,
  parameters: ReadonlyMap<string, tf.Tensor>,
  options: { readonly dtype?: Exclude<WritableDtype, "I32">; readonly metadata?: Readonly<Record<string, string>> } = {}
): Effect.Effect<void, SafetensorsError> =>
  writeSafetensors(
    file,
    specs.map((spec) => ({
      name: spec.name,
      dtype: options.dtype ?? "F32",
      shape: spec.shape,
      data: () => {
        const tensor = parameters.get(spec.name)
        if (tensor === undefined) throw new Error(`no parameter "${spec.name}" to save`)
        return toTorchLayout(spec, tensor.dataSync() as Float32Array)
      }
    })),
    { format: "pt", ...options.metadata }
  )

export const disposeParameters = (parameters: ParameterMap): void => {
  for (const tensor of parameters.values()) tensor.dispose()
  parameters.clear()
}
