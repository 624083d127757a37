import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { decodeConfig, type ModelConfigError, only } from "../model-config.ts"
import { type DiffusionScheduler, sqrtF32, statelessRun } from "./diffusion-scheduler.ts"
import { thresholdingFields } from "./thresholding.ts"
import { NoiseScheduleConfig, noiseSchedule } from "./noise-schedule.ts"
import { spacedTimesteps, timestepSpacingFields } from "./timestep-spacing.ts"

/** diffusers' DDPMScheduler (ancestral sampling of Ho et al. 2020), as `DDPMScheduler.from_config(pipeline config)`. */

const f32 = Math.fround

export const DdpmConfig = Schema.Struct({
  ...NoiseScheduleConfig.fields,
  ...timestepSpacingFields("leading"),
  // The "learned" variances need a UNet that predicts them (twice the output channels); SD's does not.
  variance_type: Schema.optionalWith(only(Schema.Literal("fixed_small", "fixed_large"), "\"fixed_small\" and \"fixed_large\""), {
    default: () => "fixed_small" as const
  }),
  clip_sample: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  clip_sample_range: Schema.optionalWith(Schema.Number, { default: () => 1 }),
  ...thresholdingFields
})
export type DdpmConfig = typeof DdpmConfig.Type

export const decodeDdpmConfig = (json: unknown, file: string): Effect.Effect<DdpmConfig, ModelConfigError> => decodeConfig(DdpmConfig, json, file)

export const ddpmScheduler = (config: DdpmConfig, steps: number): DiffusionScheduler => {
  const alphasCumprod = noiseSchedule(config).alphasCumprod
  const timesteps = spacedTimesteps(config, steps, "integer")
  return {
    timesteps,
    initNoiseSigma: 1,
    scaleModelInput: (sample) => sample,
    start: statelessRun((modelOutput, index, sample, noise) =>
      tf.tidy((): tf.Tensor4D => {
        const t = timesteps[index]!
        const previous = index + 1 < timesteps.length ? timesteps[index + 1]! : -1
        const alphaProd = alphasCumprod[t]!
        const alphaProdPrevious = previous >= 0 ? alphasCumprod[previous]! : 1
        const betaProd = f32(1 - alphaProd)
        const betaProdPrevious = f32(1 - alphaProdPrevious)
        const currentAlpha = f32(alphaProd / alphaProdPrevious)
        const currentBeta = f32(1 - currentAlpha)
        // Formula (15) of the DDPM paper: the predicted x₀.
        let original = config.prediction_type === "epsilon"
          ? tf.div(tf.sub(sample, tf.mul(modelOutput, sqrtF32(betaProd))), sqrtF32(alphaProd))
          : tf.sub(tf.mul(sample, sqrtF32(alphaProd)), tf.mul(modelOutput, sqrtF32(betaProd)))
        if (config.clip_sample) original = tf.clipByValue(original, -config.clip_sample_range, config.clip_sample_range)
        // Formula (7): the posterior mean of x_{t−1} given x₀ and x_t.
        const originalCoefficient = f32(f32(sqrtF32(alphaProdPrevious) * currentBeta) / betaProd)
        const sampleCoefficient = f32(f32(sqrtF32(currentAlpha) * betaProdPrevious) / betaProd)
        const mean: tf.Tensor4D = tf.add(tf.mul(original, originalCoefficient), tf.mul(sample, sampleCoefficient))
        if (t <= 0) return mean
        const variance = config.variance_type === "fixed_small"
          ? Math.max(f32(f32(betaProdPrevious / betaProd) * currentBeta), 1e-20)
          : currentBeta
        return tf.add(mean, tf.mul(noise(modelOutput.shape), sqrtF32(variance)))
      })
    )
  }
}
