import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { decodeConfig, type ModelConfigError, only } from "../model-config.ts"
import { type DiffusionScheduler, statelessRun } from "./diffusion-scheduler.ts"
import { NoiseScheduleConfig, noiseSchedule, type PredictionType } from "./noise-schedule.ts"
import { discreteSigmas, eulerInitNoiseSigma, inputScale, sigmaSpacing, sigmaSpacingFields, trainingSigmas } from "./sigma-schedule.ts"
import { spacedTimesteps, timestepSpacingFields } from "./timestep-spacing.ts"

/**
 * diffusers' EulerDiscreteScheduler: Euler's method on the probability-flow ODE in σ = √((1 − ᾱ)/ᾱ)
 * (Karras et al. 2022, Algorithm 2 without churn), as `EulerDiscreteScheduler.from_config(pipeline config)`.
 */

const f32 = Math.fround

export const EulerConfig = Schema.Struct({
  ...NoiseScheduleConfig.fields,
  ...timestepSpacingFields("linspace"),
  ...sigmaSpacingFields,
  interpolation_type: Schema.optionalWith(only(Schema.Literal("linear"), "\"linear\""), { default: () => "linear" as const }),
  timestep_type: Schema.optionalWith(only(Schema.Literal("discrete"), "\"discrete\""), { default: () => "discrete" as const }),
  /** The σ after the last step: 0, or the smallest training σ. */
  final_sigmas_type: Schema.optionalWith(only(Schema.Literal("zero", "sigma_min"), "\"zero\" and \"sigma_min\""), {
    default: () => "zero" as const
  })
})
export type EulerConfig = typeof EulerConfig.Type

export const decodeEulerConfig = (json: unknown, file: string): Effect.Effect<EulerConfig, ModelConfigError> => decodeConfig(EulerConfig, json, file)

export interface SigmaScheduler extends DiffusionScheduler {
  /** σ at each step, then the σ after the last (float32, as `scheduler.sigmas`). */
  readonly sigmas: Float32Array
}

/** ᾱ of the Euler schedulers: with a zero terminal SNR the last σ would be infinite, so diffusers pins ᾱ there to 2⁻²⁴. */
export const eulerAlphasCumprod = (config: NoiseScheduleConfig): Float32Array => {
  const alphasCumprod = Float32Array.from(noiseSchedule(config).alphasCumprod)
  if (config.rescale_betas_zero_snr) alphasCumprod[alphasCumprod.length - 1] = 2 ** -24
  return alphasCumprod
}

/** The denoised sample x̂₀ at σ from the model output (ε or v), as the σ-space schedulers compute it. */
export const denoisedAt = (predictionType: PredictionType, modelOutput: tf.Tensor4D, sample: tf.Tensor4D, sigma: number): tf.Tensor4D =>
  tf.tidy(() =>
    predictionType === "epsilon"
      ? tf.sub(sample, tf.mul(modelOutput, sigma))
      : tf.add(tf.mul(modelOutput, f32(-sigma / inputScale(sigma))), tf.div(sample, f32(f32(sigma * sigma) + 1)))
  )

export const eulerScheduler = (config: EulerConfig, steps: number): SigmaScheduler => {
  const alphasCumprod = eulerAlphasCumprod(config)
  const finalSigma = config.final_sigmas_type === "zero" ? 0 : trainingSigmas(alphasCumprod)[0]!
  const { timesteps, sigmas } = discreteSigmas(alphasCumprod, spacedTimesteps(config, steps, "float32"), sigmaSpacing(config), config, finalSigma)
  return {
    timesteps,
    sigmas,
    initNoiseSigma: eulerInitNoiseSigma(sigmas, config.timestep_spacing),
    scaleModelInput: (sample, index) => tf.div(sample, inputScale(sigmas[index]!)),
    start: statelessRun((modelOutput, index, sample) =>
      tf.tidy(() => {
        const sigma = sigmas[index]!
        const derivative = tf.div(tf.sub(sample, denoisedAt(config.prediction_type, modelOutput, sample, sigma)), sigma)
        return tf.add(sample, tf.mul(derivative, f32(sigmas[index + 1]! - sigma)))
      })
    )
  }
}
