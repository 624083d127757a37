import * as tf from "@tensorflow/tfjs-core"
import { Effect, Either, Exit } from "effect"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { autoencoderKlEncode } from "../../adapters/tfjs/autoencoder-kl.ts"
import { imageBatch } from "../../adapters/tfjs/encoding/image-batch.ts"
import { layersOf } from "../../adapters/tfjs/layers.ts"
import { disposePipeline, loadPipeline, type StableDiffusionPipeline } from "../../adapters/tfjs/pipeline-loader.ts"
import { encodePromptSd } from "../../adapters/tfjs/prompt-encoding.ts"
import { addNoise, decodeNoiseSchedule, type NoiseSchedule } from "../../adapters/tfjs/schedulers/noise-schedule.ts"
import { adaptedPipeline } from "../../adapters/tfjs/training/adapted-pipeline.ts"
import { type BatchSources, trainingSampleIndices } from "../../adapters/tfjs/training/micro-batch.ts"
import { buildTrainingModel, disposeAdaptation, type TrainingModel } from "../../adapters/tfjs/training/trainable-model.ts"
import { trainModel } from "../../adapters/tfjs/training/trainer.ts"
import { drawsFor, DrawPurpose, normals } from "../../adapters/tfjs/training/training-draws.ts"
import { unet2dCondition } from "../../adapters/tfjs/unet2d-condition.ts"
import { heldOutSplit, validationLossOf, validationTimesteps } from "../../adapters/tfjs/training/validation-loss.ts"
import { trainingMetrics } from "../../framework/metrics/metric-catalog.ts"
import { type PreparedIndex, readPreparedIndex, readPreparedPixels } from "../../framework/steps/prepared-dataset.ts"
import type { TrainingInput } from "../../framework/declaration/training.ts"
import type { HeldOutData } from "../../framework/services/engine.ts"
import { prepareSyntheticData } from "./prepared-data.ts"
import { adaptation, FIXTURES, temporaryFolder, training } from "./training-run.ts"

/**
 * train.validationLoss on the tfjs engine: the seeded split, training on the rest only, the held-out loss
 * against a direct computation (one UNet call per sample and timestep), and its points in the metrics of a
 * run (from step 0, before any update) and of a resumed run; a held-out dataset of its own (`data`). The
 * torch engine's equality: test/torch/equivalence.test.ts.
 * Cost: ≈ 20 s on a quiet 2-core machine (sd1-tiny, 32 px, four short trainings; 70 s at load 9).
 */

const PIPELINE = `${FIXTURES}/sd1-tiny`
const FULL_UNET = { unet: { _tag: "full", lr: 1e-3 } } as const
const DECLARED = { fraction: 0.25, every: 2, timesteps: 3 } as const

describe("train.validationLoss on the tfjs engine", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  let dataDir: string
  let prepared: PreparedIndex
  beforeAll(async () => {
    await Effect.runPromise(selectBackend("cpu"))
    folder = await temporaryFolder("validation-loss")
    dataDir = join(folder.dir, "data")
    prepared = await Effect.runPromise(Effect.zipRight(prepareSyntheticData(dataDir, { n: 8, size: 32, seed: 5 }), readPreparedIndex(dataDir)))
  })
  afterAll(() => folder.remove())

  it("splits by the seed: the same split twice, held out and training disjoint and complete, round(fraction · n) held out", () => {
    const split = Effect.runSync(heldOutSplit(7, 10, 0.25, "index.json"))
    expect(Effect.runSync(heldOutSplit(7, 10, 0.25, "index.json"))).toEqual(split)
    expect(split.heldOut).toHaveLength(3)
    expect([...split.heldOut, ...split.training].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(split.heldOut.filter((i) => split.training.includes(i))).toEqual([])
    // Another seed holds out other samples (these two seeds do).
    expect(Effect.runSync(heldOutSplit(8, 10, 0.25, "index.json")).heldOut).not.toEqual(split.heldOut)
  })

  it("refuses a split that holds out no sample, or leaves none to train on, naming the file and the field", () => {
    const none = Effect.runSync(Effect.either(heldOutSplit(7, 8, 0.05, "data/index.json")))
    expect(Either.isLeft(none) && none.left.message).toBe(
      "data/index.json: train.validationLoss.fraction 0.05 of its 8 samples holds out none; declare at least 0.063 or prepare more samples"
    )
    const all = Effect.runSync(Effect.either(heldOutSplit(7, 1, 0.5, "data/index.json")))
    expect(Either.isLeft(all) && all.left.message).toBe(
      "data/index.json: train.validationLoss.fraction 0.5 of its 1 samples leaves none to train on; prepare more samples"
    )
  })

  it("trains on the training part only: an epoch of micro-batches draws each training sample once and no held-out one", () => {
    const split = Effect.runSync(heldOutSplit(3, prepared.samples.length, 0.25, "index.json"))
    const sources = { prepared, members: split.training }
    const orders = new Map()
    const epoch = split.training.length
    const drawn = Array.from({ length: epoch }, (_, step) => trainingSampleIndices({ seed: 3, step, micro: 0, microBatches: 1, batchSize: 1 }, sources, orders))
      .flat()
    expect([...drawn].sort((a, b) => a - b)).toEqual(split.training)
  })

  it("spaces the timesteps evenly: the midpoints of K equal parts of the schedule", () => {
    expect(validationTimesteps(3, 1000)).toEqual([166, 500, 833])
    expect(validationTimesteps(4, 1000)).toEqual([125, 375, 625, 875])
    expect(validationTimesteps(1, 1000)).toEqual([500])
  })

  describe("the loss of the base (no training)", () => {
    let pipeline: StableDiffusionPipeline
    let schedule: NoiseSchedule
    beforeAll(async () => {
      pipeline = await Effect.runPromise(loadPipeline(PIPELINE))
      schedule = await Effect.runPromise(decodeNoiseSchedule(pipeline.scheduler.config, "scheduler_config.json"))
    })
    afterAll(() => disposePipeline(pipeline))

    it("equals a direct computation: each held-out image's latent mean, at each timestep, with its fixed noise, unweighted MSE", async () => {
      const seed = 11
      const model = buildTrainingModel(pipeline, adaptation(FULL_UNET, "sd15"), seed)
      try {
        const split = Effect.runSync(heldOutSplit(seed, prepared.samples.length, 0.25, "index.json"))
        const sources: BatchSources = {
          dataDir,
          prepared,
          vae: { plan: pipeline.vae.plan, layers: adaptedPipeline(pipeline, model.tensors).vae },
          schedule,
          sdxl: false,
          members: split.training
        }
        const measured = await Effect.runPromise(
          validationLossOf(model, schedule, sources, split.heldOut, validationTimesteps(3, 1000), seed, (f) => Effect.sync(f))
        )

        const timesteps = [166, 500, 833]
        const { scaling_factor: scale } = pipeline.vae.plan.config
        let sum = 0
        const [encoder] = adaptedPipeline(pipeline).textEncoders
        if (encoder === undefined) throw new Error("sd1-tiny has a text encoder")
        for (const [j, sample] of split.heldOut.map((index) => prepared.samples.at(index)).entries()) {
          if (sample === undefined) throw new Error("the split holds out prepared samples")
          const pixels = await Effect.runPromise(readPreparedPixels(dataDir, sample))
          const image = imageBatch(
            [{ pixels, height: prepared.height, width: prepared.width, channels: prepared.channels }],
            pipeline.vae.plan.config.in_channels
          )
          const { mean, logvar } = autoencoderKlEncode(pipeline.vae.plan, layersOf(pipeline.vae.parameters), image)
          const latent = tf.mul(mean, scale) as tf.Tensor4D
          const noise = normals(drawsFor(seed, DrawPurpose.validationNoise, j), timesteps.length * latent.size)
          const context = encodePromptSd(encoder, [sample.caption])
          for (const [k, t] of timesteps.entries()) {
            const eps = tf.tensor4d(noise.subarray(k * latent.size, (k + 1) * latent.size), latent.shape)
            const noisy = addNoise(schedule, latent, eps, [t])
            const prediction = unet2dCondition(pipeline.unet.plan, layersOf(pipeline.unet.parameters), {
              sample: noisy,
              timesteps: [t],
              encoderHiddenStates: context
            })
            const error = tf.mean(tf.squaredDifference(prediction, eps))
            sum += error.arraySync() as number
            tf.dispose([eps, noisy, prediction, error])
          }
          tf.dispose([image, mean, logvar, latent, context])
        }
        const direct = sum / (split.heldOut.length * timesteps.length)
        expect(Math.abs(measured - direct) / direct, `${measured} (validationLossOf) vs ${direct} (direct)`).toBeLessThan(1e-5)
      } finally {
        disposeAdaptation(model.tensors)
      }
    }, 120_000)
  })

  describe("during training", () => {
    const TRAIN: TrainingInput = { steps: 3, seed: 4, checkpointEvery: 2, validationLoss: DECLARED }
    type Point = { step: number; value: number }
    const trainIn = (workDir: string, logged: Array<Point>, options: { stopAt?: number; train?: TrainingInput; validation?: HeldOutData } = {}) =>
      trainModel({
        base: PIPELINE,
        adaptation: adaptation(FULL_UNET, "sd15"),
        train: training(options.train ?? TRAIN),
        dataDir,
        ...(options.validation === undefined ? {} : { validation: options.validation }),
        workDir,
        progress: () => Effect.void,
        metrics: (step, values) =>
          step === options.stopAt
            ? Effect.interrupt
            : Effect.sync(() => {
              const value = values[trainingMetrics.validationLoss]
              if (value !== undefined) logged.push({ step, value })
            }),
        log: () => Effect.void
      })
    /** The held-out loss of the base's weights (what step 0 measures), computed outside a training run. */
    const baseLoss = (
      sourcesOf: (pipeline: StableDiffusionPipeline, schedule: NoiseSchedule, model: TrainingModel) => BatchSources,
      heldOut: ReadonlyArray<number>
    ) =>
      Effect.scoped(Effect.gen(function*() {
        const pipeline = yield* Effect.acquireRelease(loadPipeline(PIPELINE), (p) => Effect.sync(() => disposePipeline(p)))
        const schedule = yield* decodeNoiseSchedule(pipeline.scheduler.config, "scheduler_config.json")
        const model = yield* Effect.acquireRelease(Effect.sync(() => buildTrainingModel(pipeline, adaptation(FULL_UNET, "sd15"), TRAIN.seed!)), (m) =>
          Effect.sync(() => disposeAdaptation(m.tensors)))
        return yield* validationLossOf(model, schedule, sourcesOf(pipeline, schedule, model), heldOut, validationTimesteps(3, 1000), TRAIN.seed!, (f) =>
          Effect.sync(f))
      }))
    const sourcesIn =
      (dir: string, index: PreparedIndex, members?: ReadonlyArray<number>) =>
      (pipeline: StableDiffusionPipeline, schedule: NoiseSchedule, model: TrainingModel): BatchSources => ({
        dataDir: dir,
        prepared: index,
        vae: { plan: pipeline.vae.plan, layers: adaptedPipeline(pipeline, model.tensors).vae },
        schedule,
        sdxl: false,
        ...(members === undefined ? {} : { members })
      })

    it(
      "logs validation_loss before the first update, at every `every` steps and at the end; a resumed run continues the curve without repeating a point",
      async () => {
        const whole: Array<Point> = []
        await Effect.runPromise(trainIn(join(folder.dir, "whole"), whole))
        expect(whole.map((p) => p.step)).toEqual([0, 2, 3])
        for (const p of whole) expect(Number.isFinite(p.value) && p.value > 0).toBe(true)
        // The weights change between the points, the held-out set and noise do not.
        expect(new Set(whole.map((p) => p.value)).size).toBe(3)
        // Step 0 is the base's held-out loss, before any update.
        const split = Effect.runSync(heldOutSplit(TRAIN.seed!, prepared.samples.length, DECLARED.fraction, "index.json"))
        expect(whole[0]!.value).toBeCloseTo(await Effect.runPromise(baseLoss(sourcesIn(dataDir, prepared, split.training), split.heldOut)), 6)

        const resumed: Array<Point> = []
        const interrupted = await Effect.runPromiseExit(trainIn(join(folder.dir, "resumed"), resumed, { stopAt: 3 }))
        expect(Exit.isInterrupted(interrupted)).toBe(true)
        await Effect.runPromise(trainIn(join(folder.dir, "resumed"), resumed))
        expect(resumed).toEqual(whole)
      },
      300_000
    )

    it("measures a held-out dataset of its own (train.validationLoss.data): every one of its samples, from step 0", async () => {
      const heldDir = join(folder.dir, "held-out")
      const held = await Effect.runPromise(Effect.zipRight(prepareSyntheticData(heldDir, { n: 2, size: 32, seed: 9 }), readPreparedIndex(heldDir)))
      const train: TrainingInput = { ...TRAIN, validationLoss: { data: { _tag: "synthetic", n: 2, size: 32, seed: 9 }, every: 2, timesteps: 3 } }
      const points: Array<Point> = []
      await Effect.runPromise(trainIn(join(folder.dir, "held-out-run"), points, { train, validation: { dataDir: heldDir } }))
      expect(points.map((p) => p.step)).toEqual([0, 2, 3])
      expect(points[0]!.value).toBeCloseTo(await Effect.runPromise(baseLoss(sourcesIn(heldDir, held), [0, 1])), 6)
    }, 300_000)

    it("refuses a held-out dataset whose samples are not the training data's shape, naming its index", async () => {
      const smallDir = join(folder.dir, "held-out-16")
      await Effect.runPromise(prepareSyntheticData(smallDir, { n: 2, size: 16, seed: 9 }))
      const train: TrainingInput = { ...TRAIN, validationLoss: { data: { _tag: "synthetic", n: 2, size: 16, seed: 9 } } }
      const exit = await Effect.runPromise(Effect.either(trainIn(join(folder.dir, "refused"), [], { train, validation: { dataDir: smallDir } })))
      expect(Either.isLeft(exit) && exit.left.message).toBe(
        `${smallDir}/index.json: train.validationLoss.data's samples are 16×16×1, the training data's 32×32×1`
      )
    }, 120_000)
  })
})
