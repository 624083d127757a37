import * as tf from "@tensorflow/tfjs-core"
import { controlNet, type ControlNetPlan } from "../controlnet.ts"
import type { Layers } from "../layers.ts"
import { addNoise, signalToNoise, trainingTarget, type NoiseSchedule } from "../schedulers/noise-schedule.ts"
import { unet2dCondition, type TextTimeConditioning, type Unet2DConditionPlan } from "../unet2d-condition.ts"

/** One micro-batch of the denoising objective; the noise and timesteps are drawn by the caller. */
export interface DiffusionBatch {
  /** Clean latents, already scaled by the VAE's scaling factor: NHWC. */
  readonly latents: tf.Tensor4D
  /** The noise to add (noise offset included). */
  readonly noise: tf.Tensor4D
  readonly timesteps: ReadonlyArray<number>
  readonly encoderHiddenStates: tf.Tensor3D
  readonly textTime?: TextTimeConditioning
}

/** A ControlNet in the gradient, with each row's conditioning image (NHWC, [0, 1]). */
export interface TrainedControl {
  readonly plan: ControlNetPlan
  readonly layers: Layers
  readonly condition: tf.Tensor4D
}

/**
 * Min-SNR-γ weights (Hang et al. 2023) as diffusers' training scripts compute them:
 * min(SNR, γ) / SNR for epsilon targets, min(SNR, γ) / (SNR + 1) for v targets.
 */
export const minSnrWeights = (schedule: NoiseSchedule, timesteps: ReadonlyArray<number>, gamma: number): Array<number> =>
  timesteps.map((t) => {
    const snr = signalToNoise(schedule, t)
    const clipped = Math.min(snr, gamma)
    if (schedule.predictionType === "v_prediction") return clipped / (snr + 1)
    // A zero-terminal-SNR schedule's last step has SNR 0: nothing to weigh there.
    return snr === 0 ? 0 : clipped / snr
  })

/**
 * The DDPM loss: add noise at each row's timestep, predict with the UNet, mean squared error against
 * the schedule's target (noise or velocity), each row weighted by min-SNR-γ when declared. With
 * `control`, the UNet takes the ControlNet's residuals, at scale 1 as diffusers' train_controlnet.py.
 */
export const diffusionLoss = (
  schedule: NoiseSchedule,
  plan: Unet2DConditionPlan,
  layers: Layers,
  batch: DiffusionBatch,
  minSnrGamma: number | undefined,
  control?: TrainedControl
): tf.Scalar =>
  tf.tidy(() => {
    const noisy = addNoise(schedule, batch.latents, batch.noise, batch.timesteps)
    const target = trainingTarget(schedule, batch.latents, batch.noise, batch.timesteps)
    const textTime = batch.textTime === undefined ? {} : { textTime: batch.textTime }
    const controlResiduals = control === undefined ? undefined : controlNet(control.plan, control.layers, {
      sample: noisy,
      timesteps: batch.timesteps,
      encoderHiddenStates: batch.encoderHiddenStates,
      ...textTime,
      condition: control.condition
    })
    const prediction = unet2dCondition(plan, layers, {
      sample: noisy,
      timesteps: batch.timesteps,
      encoderHiddenStates: batch.encoderHiddenStates,
      ...textTime,
      ...(controlResiduals === undefined ? {} : { controlResiduals })
    })
    const perRow = tf.mean(tf.squaredDifference(prediction, target), [1, 2, 3])
    if (minSnrGamma === undefined) return tf.mean(perRow)
    return tf.mean(tf.mul(perRow, tf.tensor1d(minSnrWeights(schedule, batch.timesteps, minSnrGamma))))
  })
