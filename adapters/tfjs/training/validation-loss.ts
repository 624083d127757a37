import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import type { ValidationLoss } from "../../../framework/declaration/training.ts"
import type { PreparedDataError } from "../../../framework/steps/prepared-dataset.ts"
import type { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import type { NoiseSchedule } from "../schedulers/noise-schedule.ts"
import { adaptedPipeline } from "./adapted-pipeline.ts"
import { diffusionLoss } from "./diffusion-loss.ts"
import { DataFolderError } from "./index-files.ts"
import {
  type BatchSources,
  cachedConditioning,
  disposeMicroBatch,
  latentDistributions,
  latentScaling,
  latentShape,
  type MicroBatch,
  preparedImages,
  releasedOnError,
  sizeIds
} from "./micro-batch.ts"
import type { TrainingModel } from "./trainable-model.ts"
import { conditioning } from "./training-step.ts"
import { drawsFor, DrawPurpose, normals, permutation } from "./training-draws.ts"

/**
 * `train.validationLoss`: which prepared samples are held out, and their diffusion loss at fixed timesteps
 * and noise. The torch engine computes the same (adapters/torch/worker/sardine_torch/validation_loss.py):
 *
 *   split       the first round(fraction · n) entries of permutation(draws(seed, validationSplit), n) are
 *               held out (in index order); the rest train, in index order. With `data` instead, every sample
 *               of that prepared dataset is held out (in index order) and every training sample trains
 *   timesteps   t_k = ⌊(2k + 1) · T / (2K)⌋ for k = 0…K−1 (the midpoints of K equal parts of the schedule)
 *   latents     the held-out sample's latent mean (the distribution's mode), (mean − shift) · scale
 *   noise       held-out sample j (in held-out order): normals(draws(seed, validationNoise, j), K·h·w·c),
 *               NHWC, row k at timestep t_k; no noise offset
 *   loss        the unweighted mean squared error against the schedule's target (no min-SNR weighting,
 *               so strategies that weigh differently are measured alike), averaged over rows and samples;
 *               the caption as written (no dropout); the weights being trained (not the EMA), no LoRA
 *               dropout, no gradient
 */

export interface HeldOutSplit {
  /** Indices into the prepared samples, ascending. */
  readonly heldOut: ReadonlyArray<number>
  readonly training: ReadonlyArray<number>
}

/** The seeded split of `count` prepared samples; refused when it holds out none or leaves none to train on. */
export const heldOutSplit = (seed: number, count: number, fraction: number, indexFile: string): Effect.Effect<HeldOutSplit, DataFolderError> => {
  const held = Math.round(fraction * count)
  const refused = held < 1
    ? `holds out none; declare at least ${Math.ceil((0.5 / count) * 1000) / 1000} or prepare more samples`
    : held >= count
    ? "leaves none to train on; prepare more samples"
    : undefined
  if (refused !== undefined) {
    return Effect.fail(new DataFolderError({ file: indexFile, reason: `train.validationLoss.fraction ${fraction} of its ${count} samples ${refused}` }))
  }
  const order = permutation(drawsFor(seed, DrawPurpose.validationSplit), count)
  const heldOut = [...order.subarray(0, held)].sort((a, b) => a - b)
  const out = new Set(heldOut)
  return Effect.succeed({ heldOut, training: Array.from({ length: count }, (_, i) => i).filter((i) => !out.has(i)) })
}

/** The K evenly spaced timesteps of a schedule of `total` training timesteps. */
export const validationTimesteps = (count: number, total: number): Array<number> =>
  Array.from({ length: count }, (_, k) => Math.floor(((2 * k + 1) * total) / (2 * count)))

/** The declared number of timesteps on `schedule`, refused before training when the schedule has fewer. */
export const scheduledValidationTimesteps = (declared: ValidationLoss, schedule: NoiseSchedule, indexFile: string) =>
  declared.timesteps > schedule.numTrainTimesteps
    ? Effect.fail(
      new DataFolderError({
        file: indexFile,
        reason: `train.validationLoss.timesteps ${declared.timesteps}: the schedule has only ${schedule.numTrainTimesteps} training timesteps`
      })
    )
    : Effect.succeed(validationTimesteps(declared.timesteps, schedule.numTrainTimesteps))

/**
 * The held-out samples' diffusion loss with the model's current weights; `compute` runs each sample's
 * forward pass (the trainer's, which turns a tfjs failure into its typed error).
 */
export const validationLossOf = <E>(
  model: TrainingModel,
  schedule: NoiseSchedule,
  sources: BatchSources,
  heldOut: ReadonlyArray<number>,
  timesteps: ReadonlyArray<number>,
  seed: number,
  compute: (f: () => number) => Effect.Effect<number, E>
): Effect.Effect<number, SafetensorsError | DataFolderError | PreparedDataError | E> =>
  Effect.gen(function*() {
    const view = adaptedPipeline(model.pipeline, model.tensors)
    const [h, w, c] = latentShape(sources)
    const { scale, shift } = latentScaling(sources)
    let sum = 0
    const samples = heldOut.flatMap((index) => {
      const sample = sources.prepared.samples[index]
      return sample === undefined ? [] : [{ index, sample }]
    })
    for (const [j, { index, sample }] of samples.entries()) {
      const batch = yield* releasedOnError((track) =>
        Effect.gen(function*() {
          const images = sources.latents === undefined ? track(yield* preparedImages(sources, [sample])) : undefined
          const distributions = yield* latentDistributions(sources, [index], images)
          const latent = Float32Array.from(distributions.flatMap((d) => [...d.mean]), (m) => (m - shift) * scale)
          const rows = new Float32Array(latent.length * timesteps.length)
          for (let k = 0; k < timesteps.length; k++) rows.set(latent, k * latent.length)
          const shape = [timesteps.length, h, w, c] as [number, number, number, number]
          const captions = timesteps.map(() => sample.caption)
          const cachedText = yield* cachedConditioning(sources, captions, track)
          if (images !== undefined) images.dispose()
          return {
            samples: [sample],
            captions,
            diffusion: {
              latents: track(tf.tensor4d(rows, shape)),
              noise: track(tf.tensor4d(normals(drawsFor(seed, DrawPurpose.validationNoise, j), rows.length), shape)),
              timesteps,
              timeIds: timesteps.map(() => sizeIds(sources.prepared)),
              ...(cachedText === undefined ? {} : { cachedText })
            }
          } satisfies MicroBatch
        })
      )
      const d = batch.diffusion
      sum += yield* compute(() => {
        const loss = tf.tidy(() =>
          diffusionLoss(
            schedule,
            model.pipeline.unet.plan,
            view.unet,
            { latents: d.latents, noise: d.noise, timesteps, ...conditioning(view, batch, d) },
            undefined
          )
        )
        const value = loss.arraySync()
        loss.dispose()
        return value
      }).pipe(Effect.ensuring(Effect.sync(() => disposeMicroBatch(batch))))
    }
    return sum / samples.length
  })
