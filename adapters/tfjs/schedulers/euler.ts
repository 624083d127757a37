import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { decodeConfig, type ModelConfigError, only } from "../model-config.ts"
import { type DiffusionScheduler, sqrtF32 } from "./diffusion-scheduler.ts"
import { NoiseScheduleConfig, noiseSchedule } from "./noise-schedule.ts"
import { spacedTimesteps, timestepSpacingFields } from "./timestep-spacing.ts"

/**
 * diffusers' EulerDiscreteScheduler: Euler's method on the probability-flow ODE in σ = √((1 − ᾱ)/ᾱ)
 * (Karras et al. 2022, Algorithm 2 without churn), as `EulerDiscreteScheduler.from_config(pipeline config)`.
 */

const f32 = Math.fround

const off = (what: string) => Schema.optionalWith(only(Schema.Literal(false), `false (${what} is not implemented)`), { default: () => false as const })

export const EulerConfig = Schema.Struct({
  ...NoiseScheduleConfig.fields,
  ...timestepSpacingFields("linspace"),
  interpolation_type: Schema.optionalWith(only(Schema.Literal("linear"), "\"linear\""), { default: () => "linear" as const }),
  use_karras_sigmas: off("the Karras sigma schedule"),
  use_exponential_sigmas: off("the exponential sigma schedule"),
  use_beta_sigmas: off("the beta sigma schedule"),
  timestep_type: Schema.optionalWith(only(Schema.Literal("discrete"), "\"discrete\""), { default: () => "discrete" as const }),
  /** The σ after the last step: 0, or the smallest training σ. */
  final_sigmas_type: Schema.optionalWith(only(Schema.Literal("zero", "sigma_min"), "\"zero\" and \"sigma_min\""), {
    default: () => "zero" as const
  })
})
export type EulerConfig = typeof EulerConfig.Type

export const decodeEulerConfig = (json: unknown, file: string): Effect.Effect<EulerConfig, ModelConfigError> => decodeConfig(EulerConfig, json, file)

/** np.interp of (possibly fractional) timesteps into the per-training-step values `table`. */
const interpolate = (t: number, table: Float32Array): number => {
  const j = Math.floor(t)
  if (j >= table.length - 1) return table[table.length - 1]
  return j === t ? table[j] : (table[j + 1] - table[j]) * (t - j) + table[j]
}

export interface EulerScheduler extends DiffusionScheduler {
  /** σ at each step, then the σ after the last (float32, as `scheduler.sigmas`). */
  readonly sigmas: Float32Array
}

export const eulerScheduler = (config: EulerConfig, steps: number): EulerScheduler => {
  const alphasCumprod = Float32Array.from(noiseSchedule(config).alphasCumprod)
  // With a zero terminal SNR the last σ would be infinite; diffusers pins ᾱ there to 2⁻²⁴.
  if (config.rescale_betas_zero_snr) alphasCumprod[alphasCumprod.length - 1] = 2 ** -24
  const trainingSigmas = alphasCumprod.map((a) => sqrtF32(f32(f32(1 - a) / a)))
  const timesteps = spacedTimesteps(config, steps, "float32")
  const sigmas = Float32Array.from([
    ...timesteps.map((t) => interpolate(t, trainingSigmas)),
    config.final_sigmas_type === "zero" ? 0 : trainingSigmas[0]
  ])
  const maxSigma = Math.max(...sigmas)
  const initNoiseSigma = config.timestep_spacing === "leading" ? sqrtF32(f32(f32(maxSigma * maxSigma) + 1)) : maxSigma
  const inputScale = (sigma: number) => sqrtF32(f32(f32(sigma * sigma) + 1))
  return {
    timesteps,
    sigmas,
    initNoiseSigma,
    scaleModelInput: (sample, index) => tf.div(sample, inputScale(sigmas[index])),
    step: (modelOutput, index, sample) =>
      tf.tidy(() => {
        const sigma = sigmas[index]
        const original = config.prediction_type === "epsilon"
          ? tf.sub(sample, tf.mul(modelOutput, sigma))
          : tf.add(tf.mul(modelOutput, f32(-sigma / inputScale(sigma))), tf.div(sample, f32(f32(sigma * sigma) + 1)))
        const derivative = tf.div(tf.sub(sample, original), sigma)
        return tf.add(sample, tf.mul(derivative, f32(sigmas[index + 1] - sigma)))
      })
  }
}
