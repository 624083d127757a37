import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import { join } from "node:path"
import { openSafetensors } from "../../adapters/safetensors/safetensors-reader.ts"
import { openLatentCache } from "../../adapters/tfjs/encoding/latent-cache.ts"
import { disposePipeline, loadPipeline } from "../../adapters/tfjs/pipeline-loader.ts"
import { decodeNoiseSchedule } from "../../adapters/tfjs/schedulers/noise-schedule.ts"
import { adaptedPipeline } from "../../adapters/tfjs/training/adapted-pipeline.ts"
import { disposeMicroBatch, loadMicroBatch, type EpochOrders } from "../../adapters/tfjs/training/micro-batch.ts"
import { buildTrainingModel, disposeAdaptation } from "../../adapters/tfjs/training/trainable-model.ts"
import { microBatchGradients } from "../../adapters/tfjs/training/training-step.ts"
import { resolveAdaptation, trainsDiffusion, trainsVae } from "../../framework/declaration/adaptation.ts"
import type { ModelFamily } from "../../framework/declaration/base-model.ts"
import type { Components } from "../../framework/declaration/components.ts"
import type { Training } from "../../framework/declaration/training.ts"
import { readPreparedIndex } from "../../framework/steps/prepared-dataset.ts"
import { readWeights } from "../training/training-run.ts"
import { runPython } from "./torch-worker.ts"

/** One engine's first micro-batch of a training: the trainables as they start, their gradients, the loss. */
export interface StepZero {
  readonly loss: number
  readonly initial: ReadonlyMap<string, Float32Array>
  readonly gradients: ReadonlyMap<string, Float32Array>
}

export interface StepZeroCase {
  readonly base: string
  readonly family: ModelFamily
  readonly components: Components
  readonly train: Training
  readonly dataDir: string
  readonly latentsDir: string
}

/** The tfjs engine's step 0, through its own trainer's pieces (on the backend in use). */
export const tfjsStepZero = (c: StepZeroCase): Promise<StepZero> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const pipeline = yield* Effect.acquireRelease(loadPipeline(c.base), (p) => Effect.sync(() => disposePipeline(p)))
    const adaptation = resolveAdaptation(c.components, c.family)
    const model = yield* Effect.acquireRelease(Effect.sync(() => buildTrainingModel(pipeline, adaptation, c.train.seed)), (m) =>
      Effect.sync(() => disposeAdaptation(m.tensors)))
    const initial = new Map(model.trainables.map((t) => [t.name, t.variable.dataSync() as Float32Array]))
    const schedule = yield* decodeNoiseSchedule(pipeline.scheduler.config, "scheduler_config.json")
    const prepared = yield* readPreparedIndex(c.dataDir)
    const latents = trainsVae(adaptation) ? undefined : yield* openLatentCache(c.latentsDir)
    const sources = {
      dataDir: c.dataDir,
      prepared,
      ...(latents === undefined ? {} : { latents }),
      vae: { plan: pipeline.vae.plan, layers: adaptedPipeline(pipeline, model.tensors).vae },
      schedule,
      sdxl: pipeline.family === "sdxl"
    }
    const needs = {
      diffusion: trainsDiffusion(adaptation),
      reconstruction: trainsVae(adaptation),
      captionDropout: c.train.captionDropout,
      noiseOffset: c.train.noiseOffset
    }
    const at = { seed: c.train.seed, step: 0, micro: 0, microBatches: c.train.gradientAccumulation, batchSize: c.train.batchSize }
    const orders: EpochOrders = new Map()
    const batch = yield* loadMicroBatch(at, sources, needs, orders)
    const result = microBatchGradients(model, schedule, c.train, batch, at)
    disposeMicroBatch(batch)
    const gradients = new Map([...result.gradients].map(([name, g]) => [name, g.dataSync() as Float32Array]))
    tf.dispose([...result.gradients.values()])
    return { loss: result.loss, initial, gradients }
  })))

/** The torch engine's step 0 of every case, through its worker's training session (one Python start). */
export const torchStepZero = async (cases: ReadonlyArray<StepZeroCase>, dir: string): Promise<Array<StepZero>> => {
  const runs = cases.map((c, i) => ({
    request: {
      base: c.base,
      adaptation: resolveAdaptation(c.components, c.family),
      train: { ...c.train, validationEvery: c.train.checkpointEvery },
      dataDir: c.dataDir,
      latentsDir: c.latentsDir,
      workDir: dir
    },
    out: join(dir, `step-zero-${i}.safetensors`)
  }))
  const result = await runPython(join(import.meta.dirname, "step_gradients.py"), [], JSON.stringify(runs))
  if (result.code !== 0) throw new Error(`step_gradients.py failed:\n${result.stderr}`)
  return Promise.all(runs.map(async ({ out }) => {
    const tensors = await readWeights(out)
    const metadata = await Effect.runPromise(Effect.scoped(Effect.map(openSafetensors(out), (reader) => reader.header.metadata)))
    const part = (prefix: string) => new Map([...tensors].filter(([n]) => n.startsWith(prefix)).map(([n, t]) => [n.slice(prefix.length), t.data]))
    return { loss: Number(metadata.loss), initial: part("param."), gradients: part("grad.") }
  }))
}
