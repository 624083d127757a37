import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { decodeConfig, type ModelConfigError } from "../model-config.ts"
import type { SchedulerRun } from "./diffusion-scheduler.ts"
import { denoisedAt, type SigmaScheduler } from "./euler.ts"
import { NoiseScheduleConfig, noiseSchedule } from "./noise-schedule.ts"
import { discreteSigmas, eulerInitNoiseSigma, inputScale, sigmaSpacing, sigmaSpacingFields } from "./sigma-schedule.ts"
import { spacedTimesteps, timestepSpacingFields } from "./timestep-spacing.ts"

/**
 * diffusers' HeunDiscreteScheduler: Heun's second-order method on the probability-flow ODE (Karras et
 * al. 2022, Algorithm 1 without churn), as `HeunDiscreteScheduler.from_config(pipeline config)`. Every
 * step but the last costs two model calls: the timesteps after the first are listed twice, the first
 * visit an Euler step to σ_next, the second the correction with the average of both slopes from σ.
 * The class has no zero-terminal-SNR rescaling (diffusers ignores `rescale_betas_zero_snr` here).
 */

const f32 = Math.fround

export const HeunConfig = Schema.Struct({
  ...NoiseScheduleConfig.fields,
  // The class's own defaults (the pipeline's config normally sets both).
  beta_start: Schema.optionalWith(Schema.Number, { default: () => 0.00085 }),
  beta_end: Schema.optionalWith(Schema.Number, { default: () => 0.012 }),
  ...timestepSpacingFields("linspace"),
  ...sigmaSpacingFields,
  clip_sample: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  clip_sample_range: Schema.optionalWith(Schema.Number, { default: () => 1 })
})
export type HeunConfig = typeof HeunConfig.Type

export const decodeHeunConfig = (json: unknown, file: string): Effect.Effect<HeunConfig, ModelConfigError> => decodeConfig(HeunConfig, json, file)

/** Each inner entry twice: [a, b, c, d] → [a, b, b, c, c, d] (torch's `repeat_interleave(2)` of the middle). */
const doubleInner = <T>(values: ArrayLike<T>): Array<T> => {
  const all = Array.from(values)
  return [...all.slice(0, 1), ...all.slice(1, -1).flatMap((v) => [v, v]), ...all.slice(-1)]
}

export const heunScheduler = (config: HeunConfig, steps: number): SigmaScheduler => {
  const alphasCumprod = noiseSchedule({ ...config, rescale_betas_zero_snr: false }).alphasCumprod
  const base = discreteSigmas(alphasCumprod, spacedTimesteps(config, steps, "float32"), sigmaSpacing(config), config, 0)
  const sigmas = Float32Array.from(doubleInner(base.sigmas))
  const timesteps = [...base.timesteps.slice(0, 1), ...base.timesteps.slice(1).flatMap((t) => [t, t])]
  const clip = (x: tf.Tensor4D): tf.Tensor4D => (config.clip_sample ? tf.clipByValue(x, -config.clip_sample_range, config.clip_sample_range) : x)
  const start = (): SchedulerRun => {
    // Between the two visits of a step: the first slope, the step size and the sample it started from.
    let first: { derivative: tf.Tensor4D; dt: number; sample: tf.Tensor4D } | undefined
    const release = () => {
      if (first !== undefined) tf.dispose([first.derivative, first.sample])
      first = undefined
    }
    return {
      step: (modelOutput, index, sample) => {
        if (first === undefined) {
          const sigma = sigmas[index]!
          const dt = f32(sigmas[index + 1]! - sigma)
          const derivative = tf.keep(
            tf.tidy((): tf.Tensor4D => tf.div(tf.sub(sample, clip(denoisedAt(config.prediction_type, modelOutput, sample, sigma))), sigma))
          )
          first = { derivative, dt, sample: tf.keep(tf.clone(sample)) }
          return tf.tidy((): tf.Tensor4D => tf.add(sample, tf.mul(derivative, dt)))
        }
        const { derivative, dt, sample: from } = first
        const sigmaNext = sigmas[index]!
        const next = tf.tidy((): tf.Tensor4D => {
          const second = tf.div(tf.sub(sample, clip(denoisedAt(config.prediction_type, modelOutput, sample, sigmaNext))), sigmaNext)
          return tf.add(from, tf.mul(tf.div(tf.add(derivative, second), 2), dt))
        })
        release()
        return next
      },
      dispose: release
    }
  }
  return {
    timesteps,
    sigmas,
    initNoiseSigma: eulerInitNoiseSigma(sigmas, config.timestep_spacing),
    scaleModelInput: (sample, index) => tf.div(sample, inputScale(sigmas[index]!)),
    start
  }
}
