import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { decodeConfig, type ModelConfigError } from "../model-config.ts"
import { sqrtF32, statelessRun } from "./diffusion-scheduler.ts"
import { denoisedAt, eulerAlphasCumprod, type SigmaScheduler } from "./euler.ts"
import { NoiseScheduleConfig } from "./noise-schedule.ts"
import { discreteSigmas, eulerInitNoiseSigma, inputScale } from "./sigma-schedule.ts"
import { spacedTimesteps, timestepSpacingFields } from "./timestep-spacing.ts"

/**
 * diffusers' EulerAncestralDiscreteScheduler ("Euler a"): each step goes down to σ_down by Euler's method,
 * then adds fresh noise of σ_up so that σ_down² + σ_up² = σ_next² (k-diffusion's `sample_euler_ancestral`
 * with η = 1), as `EulerAncestralDiscreteScheduler.from_config(pipeline config)`. The class has no σ
 * respacing (Karras, exponential) and always ends at σ = 0.
 */

const f32 = Math.fround

export const EulerAncestralConfig = Schema.Struct({
  ...NoiseScheduleConfig.fields,
  ...timestepSpacingFields("linspace")
})
export type EulerAncestralConfig = typeof EulerAncestralConfig.Type

export const decodeEulerAncestralConfig = (json: unknown, file: string): Effect.Effect<EulerAncestralConfig, ModelConfigError> =>
  decodeConfig(EulerAncestralConfig, json, file)

const spacingOff = { use_karras_sigmas: false, use_exponential_sigmas: false, sigma_min: null, sigma_max: null }

export const eulerAncestralScheduler = (config: EulerAncestralConfig, steps: number): SigmaScheduler => {
  const alphasCumprod = eulerAlphasCumprod(config)
  const { timesteps, sigmas } = discreteSigmas(alphasCumprod, spacedTimesteps(config, steps, "float32"), "timesteps", spacingOff, 0)
  return {
    timesteps,
    sigmas,
    initNoiseSigma: eulerInitNoiseSigma(sigmas, config.timestep_spacing),
    scaleModelInput: (sample, index) => tf.div(sample, inputScale(sigmas[index]!)),
    start: statelessRun((modelOutput, index, sample, noise) =>
      tf.tidy(() => {
        const sigma = sigmas[index]!
        const next = sigmas[index + 1]!
        const from2 = f32(sigma * sigma)
        const to2 = f32(next * next)
        const sigmaUp = sqrtF32(f32(f32(to2 * f32(from2 - to2)) / from2))
        const sigmaDown = sqrtF32(f32(to2 - f32(sigmaUp * sigmaUp)))
        const derivative = tf.div(tf.sub(sample, denoisedAt(config.prediction_type, modelOutput, sample, sigma)), sigma)
        const down = tf.add(sample, tf.mul(derivative, f32(sigmaDown - sigma)))
        // diffusers draws the noise on every step, the last (σ_up = 0) included: the stream stays aligned.
        return tf.add(down, tf.mul(noise(modelOutput.shape), sigmaUp))
      })
    )
  }
}
