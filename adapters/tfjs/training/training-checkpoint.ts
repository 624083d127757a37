import * as tf from "@tensorflow/tfjs-core"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Option, Schema } from "effect"
import { join } from "node:path"
import { writeFolderAtomically } from "../../files/atomic-write-node.ts"
import { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { openSafetensors } from "../../safetensors/safetensors-reader.ts"
import { writeSafetensors, type TensorToWrite } from "../../safetensors/safetensors-writer.ts"
import type { AdamWState } from "./adamw.ts"
import { pathExists, withNodeFileSystem } from "../node-file-system.ts"
import type { EmaState } from "./exponential-moving-average.ts"
import { DataFolderError, readIndexFile, writeIndexFile } from "./index-files.ts"
import type { Trainable } from "./trainable-model.ts"
import { fileProblem } from "../../../framework/files/file-errors.ts"

/**
 * Resumable training state in the work folder:
 *   checkpoints/latest.json                   {"step": n, "folder": "step-0000000n"} — written last
 *   checkpoints/step-0000000n/state.json      step, random state, per-parameter optimiser step counts, metrics so far
 *   checkpoints/step-0000000n/tensors.safetensors
 *       param.<name>, adam.m.<name>, adam.v.<name>, ema.<name>  (float32, tfjs layout)
 * A checkpoint folder is written under a temporary name and renamed; `latest.json` then points at it
 * (temporary file + rename) and older checkpoints are removed. A crash at any point leaves the previous
 * checkpoint intact and pointed at.
 */

export const CHECKPOINTS = "checkpoints"
const LATEST = "latest.json"
const STATE = "state.json"
const TENSORS = "tensors.safetensors"

export const StepRecord = Schema.Struct({
  step: Schema.Int,
  loss: Schema.Number,
  gradNorm: Schema.Number,
  lr: Schema.Record({ key: Schema.String, value: Schema.Number }),
  imagesPerSecond: Schema.Number
})
export type StepRecord = typeof StepRecord.Type

const CheckpointState = Schema.Struct({
  format: Schema.Literal("sardine-training-checkpoint"),
  version: Schema.Literal(1),
  /** Optimiser steps done. */
  step: Schema.Int,
  /** Every draw is keyed by (seed, purpose, step, …): the next step's draws need nothing else. */
  random: Schema.Struct({ kind: Schema.Literal("counter"), seed: Schema.Number, nextStep: Schema.Int }),
  trainables: Schema.Array(Schema.String),
  adamSteps: Schema.Record({ key: Schema.String, value: Schema.Int }),
  ema: Schema.Boolean,
  history: Schema.Array(StepRecord)
})

const Latest = Schema.Struct({ step: Schema.Int, folder: Schema.String })

export interface TrainingState {
  readonly step: number
  readonly seed: number
  readonly trainables: ReadonlyArray<Trainable>
  readonly adam: AdamWState
  readonly ema: EmaState | undefined
  readonly history: ReadonlyArray<StepRecord>
}

const folderName = (step: number) => `step-${String(step).padStart(8, "0")}`

const fsFailure = (file: string) => (e: PlatformError) => new DataFolderError({ file, reason: fileProblem(e), cause: e })

const values = (tensor: tf.Tensor) => () => tensor.dataSync() as Float32Array

/** Writes a checkpoint of `state` and makes it the one a resumed run starts from. */
export const saveCheckpoint = (workDir: string, state: TrainingState): Effect.Effect<void, SafetensorsError | DataFolderError> =>
  Effect.gen(function*() {
    const root = join(workDir, CHECKPOINTS)
    const name = folderName(state.step)
    const final = join(root, name)
    const tensors: Array<TensorToWrite> = []
    for (const t of state.trainables) {
      tensors.push({ name: `param.${t.name}`, dtype: "F32", shape: t.variable.shape, data: values(t.variable) })
      const moments = state.adam.get(t.name)
      if (moments !== undefined) {
        tensors.push({ name: `adam.m.${t.name}`, dtype: "F32", shape: moments.m.shape, data: values(moments.m) })
        tensors.push({ name: `adam.v.${t.name}`, dtype: "F32", shape: moments.v.shape, data: values(moments.v) })
      }
      const average = state.ema?.get(t.name)
      if (average !== undefined) tensors.push({ name: `ema.${t.name}`, dtype: "F32", shape: average.shape, data: values(average) })
    }
    yield* writeFolderAtomically(final, (temporary) =>
      Effect.zipRight(
        writeSafetensors(join(temporary, TENSORS), tensors, { format: "sardine-checkpoint" }),
        writeIndexFile(
          join(temporary, STATE),
          {
            format: "sardine-training-checkpoint",
            version: 1,
            step: state.step,
            random: { kind: "counter", seed: state.seed, nextStep: state.step },
            trainables: state.trainables.map((t) => t.name),
            adamSteps: Object.fromEntries([...state.adam].map(([n, s]) => [n, s.step])),
            ema: state.ema !== undefined,
            history: state.history
          } satisfies typeof CheckpointState.Type
        )
      ), { replace: true }).pipe(Effect.mapError((e) => e._tag === "SystemError" || e._tag === "BadArgument" ? fsFailure(final)(e) : e))
    yield* writeIndexFile(join(root, LATEST), { step: state.step, folder: name })
    // Only now are the older checkpoints (and partial leftovers of interrupted saves) no longer needed.
    yield* withNodeFileSystem((fs) =>
      Effect.flatMap(fs.readDirectory(root), (entries) =>
        Effect.forEach(
          entries.filter((entry) => entry !== name && entry !== LATEST),
          (entry) => fs.remove(join(root, entry), { recursive: true, force: true }),
          { discard: true }
        ))
    ).pipe(Effect.mapError(fsFailure(root)))
  })

export interface RestoredState {
  readonly step: number
  readonly adam: AdamWState
  readonly ema: EmaState | undefined
  readonly history: ReadonlyArray<StepRecord>
}

/**
 * Loads the latest checkpoint of `workDir` into the trainables' variables and returns the optimiser
 * state, EMA and history; none when the folder holds no checkpoint. A checkpoint of another
 * declaration (different trainables or seed) is an error naming the file.
 */
export const restoreCheckpoint = (
  workDir: string,
  trainables: ReadonlyArray<Trainable>,
  seed: number
): Effect.Effect<Option.Option<RestoredState>, SafetensorsError | DataFolderError> =>
  Effect.gen(function*() {
    const root = join(workDir, CHECKPOINTS)
    const latestFile = join(root, LATEST)
    const present = yield* pathExists(latestFile).pipe(Effect.mapError(fsFailure(latestFile)))
    if (!present) return Option.none()
    const latest = yield* readIndexFile(latestFile, Latest)
    const folder = join(root, latest.folder)
    const stateFile = join(folder, STATE)
    const state = yield* readIndexFile(stateFile, CheckpointState)
    const expected = trainables.map((t) => t.name)
    if (state.random.seed !== seed || state.trainables.length !== expected.length || state.trainables.some((n, i) => n !== expected[i])) {
      return yield* new DataFolderError({ file: stateFile, reason: "was written by another training declaration (its trainable tensors or seed differ)" })
    }
    return yield* Effect.scoped(
      Effect.gen(function*() {
        const file = join(folder, TENSORS)
        const reader = yield* openSafetensors(file)
        const read = (name: string, shape: ReadonlyArray<number>) =>
          Effect.gen(function*() {
            const info = reader.header.byName.get(name)
            if (info === undefined || info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
              return yield* new SafetensorsError({ file, tensor: name, reason: `missing or not of shape [${shape}]` })
            }
            return tf.tensor(yield* reader.readFloat32(name), shape.slice(), "float32")
          })
        const adam: AdamWState = new Map()
        const ema: EmaState | undefined = state.ema ? new Map() : undefined
        const loaded: Array<tf.Tensor> = []
        return yield* Effect.gen(function*() {
          for (const t of trainables) {
            const value = yield* read(`param.${t.name}`, t.variable.shape)
            t.variable.assign(value)
            value.dispose()
            const steps = state.adamSteps[t.name]
            if (steps !== undefined) {
              const m = yield* read(`adam.m.${t.name}`, t.variable.shape)
              loaded.push(m)
              const v = yield* read(`adam.v.${t.name}`, t.variable.shape)
              loaded.push(v)
              adam.set(t.name, { step: steps, m, v })
            }
            if (ema !== undefined) {
              const average = yield* read(`ema.${t.name}`, t.variable.shape)
              loaded.push(average)
              ema.set(t.name, average)
            }
          }
          return Option.some({ step: state.step, adam, ema, history: state.history })
        }).pipe(Effect.onError(() => Effect.sync(() => tf.dispose(loaded))))
      })
    )
  })
