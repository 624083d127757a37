import type * as tf from "@tensorflow/tfjs-core"

/** Fresh standard-normal noise of an NHWC shape, for the steps that add noise (DDPM, DDIM with η > 0). */
export type NoiseDraw = (shape: readonly [number, number, number, number]) => tf.Tensor4D

/**
 * A scheduler set to a number of inference steps, as diffusers' `set_timesteps` leaves it: the
 * timesteps the model is called at and how one step moves the latents. Every scheduler file builds
 * one, so the sampling loop is the same for all of them. Tensors are NHWC; step `index` runs from 0.
 */
export interface DiffusionScheduler {
  /** The timesteps the UNet receives, in sampling order (fractional for some Euler spacings). */
  readonly timesteps: ReadonlyArray<number>
  /** Standard deviation the initial Gaussian noise is scaled to. */
  readonly initNoiseSigma: number
  /** `scale_model_input`: what the UNet sees at step `index`. */
  readonly scaleModelInput: (sample: tf.Tensor4D, index: number) => tf.Tensor4D
  /** `step(...).prev_sample`: the latents after step `index`, from the (guided) model output at that step. */
  readonly step: (modelOutput: tf.Tensor4D, index: number, sample: tf.Tensor4D, noise: NoiseDraw) => tf.Tensor4D
}

/** √x rounded to float32, as torch's `x ** 0.5` on a float32 scalar tensor. */
export const sqrtF32 = (x: number): number => Math.fround(Math.sqrt(x))
