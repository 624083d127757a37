import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { decodeConfig, type ModelConfigError } from "../model-config.ts"
import { type DiffusionScheduler, sqrtF32, statelessRun } from "./diffusion-scheduler.ts"
import { thresholdingFields } from "./thresholding.ts"
import { NoiseScheduleConfig, noiseSchedule } from "./noise-schedule.ts"
import { spacedTimesteps, timestepSpacingFields } from "./timestep-spacing.ts"

/**
 * diffusers' DDIMScheduler (Song et al. 2021), as `DDIMScheduler.from_config(pipeline config)`.
 * η = 0 is deterministic DDIM; η = 1 adds DDPM's posterior noise.
 */

const f32 = Math.fround

export const DdimConfig = Schema.Struct({
  ...NoiseScheduleConfig.fields,
  ...timestepSpacingFields("leading"),
  clip_sample: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  clip_sample_range: Schema.optionalWith(Schema.Number, { default: () => 1 }),
  /** The ᾱ after the last step: 1, or ᾱ₀ (SD's published configs say false). */
  set_alpha_to_one: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  ...thresholdingFields
})
export type DdimConfig = typeof DdimConfig.Type

export const decodeDdimConfig = (json: unknown, file: string): Effect.Effect<DdimConfig, ModelConfigError> => decodeConfig(DdimConfig, json, file)

export const ddimScheduler = (config: DdimConfig, steps: number, eta: number): DiffusionScheduler => {
  const alphasCumprod = noiseSchedule(config).alphasCumprod
  const finalAlphaCumprod = config.set_alpha_to_one ? 1 : alphasCumprod[0]!
  const timesteps = spacedTimesteps(config, steps, "integer")
  // diffusers steps back by a fixed stride whatever the spacing (so "trailing" ends between two picks).
  const stride = Math.floor(config.num_train_timesteps / steps)
  return {
    timesteps,
    initNoiseSigma: 1,
    scaleModelInput: (sample) => sample,
    start: statelessRun((modelOutput, index, sample, noise) =>
      tf.tidy((): tf.Tensor4D => {
        const t = timesteps[index]!
        const previous = t - stride
        const alphaProd = alphasCumprod[t]!
        const alphaProdPrevious = previous >= 0 ? alphasCumprod[previous]! : finalAlphaCumprod
        const betaProd = f32(1 - alphaProd)
        const betaProdPrevious = f32(1 - alphaProdPrevious)
        const [original0, epsilon] = config.prediction_type === "epsilon"
          ? [tf.div(tf.sub(sample, tf.mul(modelOutput, sqrtF32(betaProd))), sqrtF32(alphaProd)), modelOutput]
          : [
            tf.sub(tf.mul(sample, sqrtF32(alphaProd)), tf.mul(modelOutput, sqrtF32(betaProd))),
            tf.add(tf.mul(modelOutput, sqrtF32(alphaProd)), tf.mul(sample, sqrtF32(betaProd)))
          ]
        const original = config.clip_sample ? tf.clipByValue(original0, -config.clip_sample_range, config.clip_sample_range) : original0
        // Formula (16): σ_t(η), then formula (12) for x_{t−1}.
        const variance = f32(f32(betaProdPrevious / betaProd) * f32(1 - f32(alphaProd / alphaProdPrevious)))
        const std = f32(eta * sqrtF32(variance))
        const direction = tf.mul(epsilon, sqrtF32(f32(f32(1 - alphaProdPrevious) - f32(std * std))))
        const previousSample: tf.Tensor4D = tf.add(tf.mul(original, sqrtF32(alphaProdPrevious)), direction)
        return eta > 0 ? tf.add(previousSample, tf.mul(noise(modelOutput.shape), std)) : previousSample
      })
    )
  }
}
