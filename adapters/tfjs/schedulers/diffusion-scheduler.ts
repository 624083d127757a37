import * as tf from "@tensorflow/tfjs-core"

/** Fresh standard-normal noise of an NHWC shape, for the steps that add noise (DDPM, DDIM with η > 0, ancestral and SDE steps). */
export type NoiseDraw = (shape: readonly [number, number, number, number]) => tf.Tensor4D

/**
 * One sampling run's solver state: `step(...).prev_sample`, the latents after step `index` from the
 * (guided) model output at that step. Multistep and second-order solvers remember earlier outputs
 * here (kept tensors, released by `dispose`), so every sample starts from a fresh run.
 */
export interface SchedulerRun {
  readonly step: (modelOutput: tf.Tensor4D, index: number, sample: tf.Tensor4D, noise: NoiseDraw) => tf.Tensor4D
  /** Releases what the run kept between steps. */
  readonly dispose: () => void
}

/**
 * A scheduler set to a number of inference steps, as diffusers' `set_timesteps` leaves it: the
 * timesteps the model is called at and how one step moves the latents. Every scheduler file builds
 * one, so the sampling loop is the same for all of them. Tensors are NHWC; step `index` runs from 0.
 */
export interface DiffusionScheduler {
  /** The timesteps the UNet receives, in sampling order (fractional for some spacings; repeated by Heun). */
  readonly timesteps: ReadonlyArray<number>
  /** Standard deviation the initial Gaussian noise is scaled to. */
  readonly initNoiseSigma: number
  /** `scale_model_input`: what the UNet sees at step `index`. */
  readonly scaleModelInput: (sample: tf.Tensor4D, index: number) => tf.Tensor4D
  /** A fresh run (diffusers' scheduler right after `set_timesteps`). */
  readonly start: () => SchedulerRun
}

/** A run with nothing to remember: every step depends on its own inputs only. */
export const statelessRun = (step: SchedulerRun["step"]): () => SchedulerRun => () => ({ step, dispose: () => {} })

/** √x rounded to float32, as torch's `x ** 0.5` on a float32 scalar tensor. */
export const sqrtF32 = (x: number): number => Math.fround(Math.sqrt(x))

/** Σ cᵢ·xᵢ, left to right, each product and partial sum rounded to float32 as torch evaluates `a * x + b * y …`. */
export const linearCombination = (terms: ReadonlyArray<readonly [number, tf.Tensor4D]>): tf.Tensor4D =>
  tf.tidy(() => terms.slice(1).reduce<tf.Tensor4D>((sum, [c, x]) => tf.add(sum, tf.mul(x, c)), tf.mul(terms[0]![1], terms[0]![0])))
