import * as tf from "@tensorflow/tfjs-core"
import { Effect, Option, Schema, type Scope } from "effect"
import { join } from "node:path"
import type { HeldOutData, TrainRequest } from "../../../framework/services/engine.ts"
import type { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { openLatentCache } from "../encoding/latent-cache.ts"
import { openTextCache } from "../encoding/text-cache.ts"
import type { ModelConfigError } from "../model-config.ts"
import { disposePipeline, loadPipeline, type LoadError, type StableDiffusionPipeline } from "../pipeline-loader.ts"
import { decodeNoiseSchedule, type NoiseSchedule } from "../schedulers/noise-schedule.ts"
import { adaptedPipeline } from "./adapted-pipeline.ts"
import { registerWasmTrainingKernels } from "../wasm-kernels/index.ts"
import { registerCpuKernelFixes } from "./cpu-kernel-fixes.ts"
import { disposeAdamW, type AdamWState } from "./adamw.ts"
import { disposeEma, startEma } from "./exponential-moving-average.ts"
import { disposeMicroBatch, loadMicroBatch, type BatchSources, type EpochOrders } from "./micro-batch.ts"
import { type PreparedDataError, type PreparedIndex, readPreparedIndex } from "../../../framework/steps/prepared-dataset.ts"
import { DataFolderError } from "./index-files.ts"
import { buildTrainingModel, disposeAdaptation, TreatmentError, type TrainingModel } from "./trainable-model.ts"
import { textEncodersTrain, trainsDiffusion, trainsVae } from "../../../framework/declaration/adaptation.ts"
import { tfjsProcessesProblems, tfjsTrainingProblems } from "../../../framework/plan/engine-support.ts"
import { initialControlNet } from "./trained-controlnet.ts"
import { writeTrainedModel } from "./trained-model-files.ts"
import { restoreCheckpoint, saveCheckpoint, type StepRecord } from "./training-checkpoint.ts"
import { trainingMetrics } from "../../../framework/metrics/metric-catalog.ts"
import { heldOutSplit, scheduledValidationTimesteps, validationLossOf } from "./validation-loss.ts"
import { accumulate, microBatchGradients, optimizerStep, type OptimizerState } from "./training-step.ts"

/** The engine's train request, with the base as its pipeline folder. */
export type TrainRun = Omit<TrainRequest, "base"> & { readonly base: string }

export type TrainError =
  | LoadError
  | ModelConfigError
  | SafetensorsError
  | DataFolderError
  | PreparedDataError
  | TreatmentError
  | TrainingComputationError

/** tfjs refused a computation (shapes, a kernel this backend lacks, memory). */
export class TrainingComputationError extends Schema.TaggedError<TrainingComputationError>()("TrainingComputationError", {
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.operation}: ${this.reason}`
  }
}

const compute = <A>(operation: string, f: () => A) =>
  Effect.try({ try: f, catch: (e) => new TrainingComputationError({ operation, reason: e instanceof Error ? e.message : String(e) }) })

/** The kernels training needs on the active backend: cpu's gradient fix, wasm's missing and faster kernels. */
export const prepareBackendForTraining = Effect.sync(() => {
  const backend = tf.getBackend()
  if (backend === "cpu") registerCpuKernelFixes()
  if (backend === "wasm") registerWasmTrainingKernels()
})

/** The cached outputs must describe the same samples as the prepared data. */
const checkSameSamples = (file: string, ids: ReadonlyArray<string>, expected: ReadonlyArray<string>) =>
  ids.length === expected.length && ids.every((id, i) => id === expected[i])
    ? Effect.void
    : Effect.fail(new DataFolderError({ file, reason: "does not list the samples of the prepared data in order (stale cache?)" }))

/**
 * Where micro-batches come from: a prepared dataset with the caches the run uses for it (latents when the
 * VAE is frozen, text when the text encoders are); latents encoded on the fly come from the VAE as it is
 * (trained or not), outside the gradient.
 */
const batchSources = (
  pipeline: StableDiffusionPipeline,
  run: TrainRun,
  dirs: HeldOutData,
  prepared: PreparedIndex,
  vae: BatchSources["vae"],
  schedule: NoiseSchedule
): Effect.Effect<BatchSources, TrainError, Scope.Scope> =>
  Effect.gen(function*() {
    const latents = dirs.latentsDir !== undefined && !trainsVae(run.adaptation) ? yield* openLatentCache(dirs.latentsDir) : undefined
    if (latents !== undefined) {
      yield* checkSameSamples(join(dirs.latentsDir!, "latents.json"), latents.index.samples.map((s) => s.id), prepared.samples.map((s) => s.id))
    }
    const text = dirs.textDir !== undefined && !textEncodersTrain(run.adaptation) ? yield* openTextCache(dirs.textDir) : undefined
    if (text !== undefined && text.index.conditioning !== pipeline.family) {
      return yield* new DataFolderError({
        file: join(dirs.textDir!, "text.json"),
        reason: `holds ${text.index.conditioning} conditioning for an ${pipeline.family} base`
      })
    }
    return {
      dataDir: dirs.dataDir,
      prepared,
      ...(latents === undefined ? {} : { latents }),
      ...(text === undefined ? {} : { text }),
      vae,
      schedule,
      sdxl: pipeline.family === "sdxl"
    }
  })

/** `train.validationLoss.data`: every prepared sample of its own dataset, whose images must be the training data's shape. */
const heldOutDataSources = (
  pipeline: StableDiffusionPipeline,
  run: TrainRun,
  training: PreparedIndex,
  vae: BatchSources["vae"],
  schedule: NoiseSchedule
): Effect.Effect<{ readonly sources: BatchSources; readonly samples: ReadonlyArray<number> }, TrainError, Scope.Scope> =>
  Effect.gen(function*() {
    if (run.validation === undefined) {
      return yield* new TreatmentError({ reason: "train.validationLoss.data: the train step was given no prepared held-out data" })
    }
    const file = join(run.validation.dataDir, "index.json")
    const prepared = yield* readPreparedIndex(run.validation.dataDir)
    if (prepared.samples.length === 0) return yield* new DataFolderError({ file, reason: "train.validationLoss.data holds no sample" })
    const shape = (p: PreparedIndex) => `${p.width}×${p.height}×${p.channels}`
    if (shape(prepared) !== shape(training)) {
      return yield* new DataFolderError({
        file,
        reason: `train.validationLoss.data's samples are ${shape(prepared)}, the training data's ${shape(training)}`
      })
    }
    const sources = yield* batchSources(pipeline, run, run.validation, prepared, vae, schedule)
    return { sources, samples: prepared.samples.map((_, i) => i) }
  })

/**
 * Trains the base as `run.adaptation` and `run.train` declare, checkpointing into the work folder and
 * resuming from its last checkpoint; ends by writing the trained model there (trained-model-files.ts).
 */
export const trainModel = (run: TrainRun): Effect.Effect<void, TrainError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const pipeline = yield* Effect.acquireRelease(loadPipeline(run.base), (p) => Effect.sync(() => disposePipeline(p)))
      yield* trainPipeline(pipeline, run)
    })
  )

/**
 * `trainModel` on an already loaded pipeline (which it changes: fully trained weights stay in its maps,
 * adapters and token rows are released at the end; the trained model is in the work folder).
 */
export const trainPipeline = (pipeline: StableDiffusionPipeline, run: TrainRun): Effect.Effect<void, TrainError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const train = run.train
      yield* prepareBackendForTraining
      // Planning refuses these already; a caller that did not plan is refused the same, never ignored.
      const unsupported = [...tfjsTrainingProblems(train), ...tfjsProcessesProblems(run.processes)]
      if (unsupported.length > 0) return yield* new TreatmentError({ reason: unsupported.join("; ") })
      const schedule = yield* decodeNoiseSchedule(pipeline.scheduler.config, join(pipeline.folder, "scheduler", "scheduler_config.json"))
      const prepared = yield* readPreparedIndex(run.dataDir)
      const declaredControlNet = run.adaptation.controlnet
      // Made before any UNet weight is trained (from_unet copies the base's), released with the run.
      const controlnet = declaredControlNet === undefined ? undefined : yield* Effect.acquireRelease(
        initialControlNet(pipeline, declaredControlNet, run.controlNetFolder, { dir: run.dataDir, conditioning: prepared.conditioning }, train.seed),
        (c) => Effect.sync(() => tf.dispose([...c.parameters.values()]))
      )
      const model: TrainingModel = yield* Effect.acquireRelease(
        Effect.try({
          try: () => buildTrainingModel(pipeline, run.adaptation, train.seed, controlnet),
          catch: (e) => (e instanceof TreatmentError ? e : new TreatmentError({ reason: (e as Error).message }))
        }),
        (m) => Effect.sync(() => disposeAdaptation(m.tensors))
      )
      if (model.trainables.length === 0) {
        return yield* new TreatmentError({ reason: "components: every component is frozen and no token is learned; nothing to train" })
      }
      const diffusion = trainsDiffusion(run.adaptation)
      const reconstruction = trainsVae(run.adaptation)

      if (prepared.samples.length === 0) return yield* new DataFolderError({ file: join(run.dataDir, "index.json"), reason: "holds no training sample" })
      const validation = train.validationLoss
      const indexFile = join(run.dataDir, "index.json")
      const split = validation?.fraction === undefined ? undefined : yield* heldOutSplit(train.seed, prepared.samples.length, validation.fraction, indexFile)
      const vae = { plan: pipeline.vae.plan, layers: adaptedPipeline(pipeline, model.tensors).vae }
      const sources: BatchSources = {
        ...yield* batchSources(pipeline, run, run, prepared, vae, schedule),
        ...(split === undefined ? {} : { members: split.training })
      }
      const heldOut = validation === undefined ? undefined : {
        timesteps: yield* scheduledValidationTimesteps(validation, schedule, indexFile),
        ...(split === undefined
          ? yield* heldOutDataSources(pipeline, run, prepared, vae, schedule)
          : { sources, samples: split.heldOut })
      }
      const validationEvery = validation?.every ?? train.checkpointEvery
      const needs = { diffusion, reconstruction, captionDropout: train.captionDropout, noiseOffset: train.noiseOffset, conditions: controlnet !== undefined }

      const restored = yield* restoreCheckpoint(run.workDir, model.trainables, train.seed)
      const optimizer: OptimizerState = yield* Effect.acquireRelease(
        Effect.sync((): OptimizerState => {
          if (Option.isSome(restored)) return { adam: restored.value.adam, ema: restored.value.ema }
          return { adam: new Map() as AdamWState, ema: train.ema === undefined ? undefined : startEma(model.trainables) }
        }),
        (s) =>
          Effect.sync(() => {
            disposeAdamW(s.adam)
            if (s.ema !== undefined) disposeEma(s.ema)
          })
      )
      const history: Array<StepRecord> = Option.isSome(restored) ? [...restored.value.history] : []
      const first = Option.isSome(restored) ? restored.value.step : 0
      if (first > 0) yield* run.log(`resuming from the checkpoint at step ${first} of ${train.steps}`)
      const orders: EpochOrders = new Map()
      const measureValidationLoss = (on: NonNullable<typeof heldOut>, step: number) =>
        validationLossOf(model, schedule, on.sources, on.samples, on.timesteps, train.seed, (f) => compute(`validation loss at step ${step}`, f))
      // The curve starts where training starts: the held-out loss of the weights before any update (a resumed run has it).
      if (heldOut !== undefined && first === 0) yield* run.metrics(0, { [trainingMetrics.validationLoss]: yield* measureValidationLoss(heldOut, 0) })

      for (let step = first; step < train.steps; step++) {
        const started = performance.now()
        const sum = new Map<string, tf.Tensor>()
        let loss = 0
        yield* Effect.gen(function*() {
          for (let micro = 0; micro < train.gradientAccumulation; micro++) {
            const at = { seed: train.seed, step, micro, microBatches: train.gradientAccumulation, batchSize: train.batchSize }
            const batch = yield* loadMicroBatch(at, sources, needs, orders)
            const result = yield* compute(`training step ${step + 1}`, () => microBatchGradients(model, schedule, train, batch, at)).pipe(
              Effect.ensuring(Effect.sync(() => disposeMicroBatch(batch)))
            )
            accumulate(sum, result.gradients)
            loss += result.loss / train.gradientAccumulation
          }
        }).pipe(Effect.onError(() => Effect.sync(() => tf.dispose([...sum.values()]))))
        const outcome = yield* compute(`optimiser step ${step + 1}`, () => optimizerStep(model, train, optimizer, sum, step))
        const seconds = (performance.now() - started) / 1000
        const record: StepRecord = {
          step: step + 1,
          loss,
          gradNorm: outcome.gradNorm,
          lr: outcome.lr,
          imagesPerSecond: (train.batchSize * train.gradientAccumulation) / seconds
        }
        history.push(record)
        // In the step's own line of the training log, which keeps one line per step (a resumed run's repeat replaces it).
        const validationLoss = heldOut !== undefined && (record.step % validationEvery === 0 || record.step === train.steps)
          ? yield* measureValidationLoss(heldOut, record.step)
          : undefined
        yield* run.metrics(record.step, {
          ...(validationLoss === undefined ? {} : { [trainingMetrics.validationLoss]: validationLoss }),
          loss: record.loss,
          grad_norm: record.gradNorm,
          images_per_s: record.imagesPerSecond,
          ...Object.fromEntries(Object.entries(record.lr).map(([group, lr]) => [`lr/${group}`, lr]))
        })
        yield* run.progress(step + 1, train.steps, "steps")
        if ((step + 1) % train.checkpointEvery === 0 || step + 1 === train.steps) {
          yield* saveCheckpoint(run.workDir, {
            step: step + 1,
            seed: train.seed,
            trainables: model.trainables,
            adam: optimizer.adam,
            ema: optimizer.ema,
            history
          })
        }
      }
      yield* writeTrainedModel(run.workDir, model, train.steps, optimizer.ema, history)
    })
  )
