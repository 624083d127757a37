import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { layersOf } from "../../adapters/tfjs/layers.ts"
import { disposePipeline, loadPipeline } from "../../adapters/tfjs/pipeline-loader.ts"
import { decodeNoiseSchedule } from "../../adapters/tfjs/schedulers/noise-schedule.ts"
import { diffusionLoss } from "../../adapters/tfjs/training/diffusion-loss.ts"
import { disposeMicroBatch, loadMicroBatch } from "../../adapters/tfjs/training/micro-batch.ts"
import { EMA_WEIGHTS, MODEL_WEIGHTS } from "../../adapters/tfjs/training/trained-model-files.ts"
import { trainModel, trainPipeline } from "../../adapters/tfjs/training/trainer.ts"
import type { StepRecord } from "../../adapters/tfjs/training/training-checkpoint.ts"
import { readPreparedIndex } from "../../framework/steps/prepared-dataset.ts"
import type { ComponentsInput } from "../../framework/declaration/components.ts"
import type { TrainingInput } from "../../framework/declaration/training.ts"
import { prepareSyntheticData } from "./prepared-data.ts"
import { adaptation, FIXTURES, temporaryFolder, trainFixture, training } from "./training-run.ts"

/** Everything a run draws at random or schedules, so resuming must restore all of it. */
const HYBRID: ComponentsInput = {
  unet: { _tag: "full", lr: 1e-3, weightDecay: 0.01 },
  textEncoders: { _tag: "lora", rank: 2, dropout: 0.3, lr: 1e-2 },
  token: { token: "<SAR>", init: "radar", lr: 5e-2, vectors: 2, normReprojection: true }
}
const EVERYTHING: TrainingInput = {
  steps: 4,
  batchSize: 1,
  gradientAccumulation: 2,
  seed: 21,
  checkpointEvery: 2,
  captionDropout: 0.5,
  noiseOffset: 0.1,
  minSnrGamma: 5,
  maxGradNorm: 0.5,
  ema: { decay: 0.9 },
  lrSchedule: { warmupSteps: 2, decay: "cosine" }
}

const curve = (history: ReadonlyArray<StepRecord>) => history.map(({ step, loss, gradNorm, lr }) => ({ step, loss, gradNorm, lr }))

const trainIn = (dir: string, dataDir: string, metrics: (step: number) => Effect.Effect<void>) =>
  trainModel({
    base: `${FIXTURES}/sdxl-tiny`,
    adaptation: adaptation(HYBRID),
    train: training(EVERYTHING),
    dataDir,
    workDir: dir,
    progress: () => Effect.void,
    metrics: (step) => metrics(step),
    log: () => Effect.void
  })

describe("training runs", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  beforeAll(async () => {
    folder = await temporaryFolder("trainer")
  })
  afterAll(() => folder.remove())

  it("resumes on cpu exactly: interrupted after a checkpoint and rerun, the loss curve and the weights equal an uninterrupted run's", async () => {
    await Effect.runPromise(selectBackend("cpu"))
    const dataDir = join(folder.dir, "resume-data")
    await Effect.runPromise(prepareSyntheticData(dataDir, { n: 3, size: 32, seed: 4 }))
    const whole = join(folder.dir, "whole")
    await Effect.runPromise(trainIn(whole, dataDir, () => Effect.void))
    const resumed = join(folder.dir, "resumed")
    // Ctrl-C during step 3: the checkpoint of step 2 is the last one written.
    const interrupted = await Effect.runPromiseExit(trainIn(resumed, dataDir, (step) => (step === 3 ? Effect.interrupt : Effect.void)))
    expect(interrupted._tag).toBe("Failure")
    const latest = JSON.parse(await readFile(join(resumed, "checkpoints", "latest.json"), "utf8"))
    expect(latest.step).toBe(2)
    const seen: Array<number> = []
    await Effect.runPromise(trainIn(resumed, dataDir, (step) => Effect.sync(() => void seen.push(step))))
    expect(seen).toEqual([3, 4])
    const history = async (dir: string) => (JSON.parse(await readFile(join(dir, "training.json"), "utf8")) as { steps: Array<StepRecord> }).steps
    expect(curve(await history(resumed))).toEqual(curve(await history(whole)))
    for (const file of [MODEL_WEIGHTS, EMA_WEIGHTS]) {
      expect(Buffer.compare(await readFile(join(resumed, file)), await readFile(join(whole, file))), file).toBe(0)
    }
  })

  it("holds the tensor count flat over 20 steps on wasm (the default CPU backend)", async () => {
    await Effect.runPromise(selectBackend("wasm"))
    const before = tf.memory().numTensors
    const outcome = await trainFixture({
      dir: join(folder.dir, "flat"),
      components: HYBRID,
      train: { steps: 20, batchSize: 1, seed: 2, checkpointEvery: 7, ema: { decay: 0.99 }, captionDropout: 0.2 }
    })
    expect(outcome.tensorsPerStep).toHaveLength(20)
    expect(new Set(outcome.tensorsPerStep).size).toBe(1)
    expect(tf.memory().numTensors).toBe(before)
  })

  it.each(["wasm"])("the loss on a fixed batch falls when a full UNet overfits two images (%s)", async (backend) => {
    await Effect.runPromise(selectBackend(backend))
    const dir = join(folder.dir, `overfit-${backend}`)
    const dataDir = join(dir, "data")
    await Effect.runPromise(prepareSyntheticData(dataDir, { n: 2, size: 32, seed: 8 }))
    const pipeline = await Effect.runPromise(loadPipeline(`${FIXTURES}/sdxl-tiny`))
    try {
      const schedule = await Effect.runPromise(decodeNoiseSchedule(pipeline.scheduler.config, "scheduler_config.json"))
      const prepared = await Effect.runPromise(readPreparedIndex(dataDir))
      // The same two images, noise and timesteps before and after training; text from the frozen encoders.
      const evaluate = () =>
        Effect.runPromise(Effect.gen(function*() {
          let total = 0
          for (let draw = 0; draw < 4; draw++) {
            const at = { seed: 1000, step: draw, micro: 0, microBatches: 1, batchSize: 2 }
            const batch = yield* loadMicroBatch(
              at,
              {
                dataDir,
                prepared,
                vae: { plan: pipeline.vae.plan, layers: layersOf(pipeline.vae.parameters) },
                schedule,
                sdxl: true
              },
              { diffusion: true, reconstruction: false, captionDropout: 0, noiseOffset: 0 },
              new Map()
            )
            const d = batch.diffusion!
            const { encodePromptSdxl } = yield* Effect.promise(() => import("../../adapters/tfjs/prompt-encoding.ts"))
            const encoders = pipeline.textEncoders.map((e) => ({ plan: e.plan, layers: layersOf(e.parameters), tokenizer: e.tokenizer }))
            const loss = tf.tidy(() => {
              const text = encodePromptSdxl(encoders, batch.captions)
              return diffusionLoss(schedule, pipeline.unet.plan, layersOf(pipeline.unet.parameters), {
                latents: d.latents,
                noise: d.noise,
                timesteps: d.timesteps,
                encoderHiddenStates: text.promptEmbeds,
                textTime: { textEmbeds: text.pooledPromptEmbeds, timeIds: d.timeIds }
              }, undefined)
            })
            total += loss.dataSync()[0]! / 4
            loss.dispose()
            disposeMicroBatch(batch)
          }
          return total
        }))
      const before = await evaluate()
      await Effect.runPromise(trainPipeline(pipeline, {
        base: pipeline.folder,
        adaptation: adaptation({ unet: { _tag: "full", lr: 1e-2 } }),
        train: training({ steps: 20, batchSize: 2, seed: 3, captionDropout: 0, checkpointEvery: 100 }),
        dataDir,
        workDir: join(dir, "work"),
        progress: () => Effect.void,
        metrics: () => Effect.void,
        log: () => Effect.void
      }))
      const after = await evaluate()
      // From ≈ 1.18 (random weights) to ≈ 0.99: gradients of the wrong sign or scale would not get there.
      expect(after).toBeLessThan(0.9 * before)
    } finally {
      disposePipeline(pipeline)
    }
  })
})
