import * as tf from "@tensorflow/tfjs-core"
import { Schema } from "effect"
import { only, onlyFalse } from "../model-config.ts"
import { NoiseScheduleConfig, type PredictionType } from "./noise-schedule.ts"
import { sigmaSpacingFields } from "./sigma-schedule.ts"
import { thresholdingFields } from "./thresholding.ts"
import { timestepSpacingFields } from "./timestep-spacing.ts"

/**
 * What the multistep solvers (DPM-Solver++, UniPC) share: the (α, σ) of a σ-parameterised step, the
 * model output converted to a data (x̂₀) or noise prediction, and the history of converted outputs.
 */

const f32 = Math.fround

/** The config fields both multistep classes read alike. */
export const multistepConfigFields = {
  ...NoiseScheduleConfig.fields,
  ...timestepSpacingFields("linspace"),
  ...sigmaSpacingFields,
  solver_order: Schema.optionalWith(only(Schema.Literal(1, 2, 3), "1, 2 and 3"), { default: () => 2 as const }),
  lower_order_final: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  final_sigmas_type: Schema.optionalWith(only(Schema.Literal("zero", "sigma_min"), "\"zero\" and \"sigma_min\""), { default: () => "zero" as const }),
  ...thresholdingFields,
  use_flow_sigmas: onlyFalse("flow-matching models"),
  use_dynamic_shifting: onlyFalse("flow-matching models"),
  // Read only with flow sigmas or dynamic shifting, both refused.
  flow_shift: Schema.optionalWith(Schema.Number, { default: () => 1 }),
  time_shift_type: Schema.optionalWith(Schema.String, { default: () => "exponential" })
}

/** `_sigma_to_alpha_sigma_t`: α = 1/√(σ² + 1), σ_t = σ·α, in float32. */
export const sigmaToAlphaSigma = (sigma: number): { readonly alpha: number; readonly sigma: number } => {
  const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))))
  return { alpha, sigma: f32(sigma * alpha) }
}

/** α, σ_t and λ = log α − log σ_t of a step's σ (λ = +∞ at σ = 0). */
export const lambdaPoint = (sigma: number): { readonly alpha: number; readonly sigma: number; readonly lambda: number } => {
  const point = sigmaToAlphaSigma(sigma)
  return { ...point, lambda: f32(f32(Math.log(point.alpha)) - f32(Math.log(point.sigma))) }
}

/** x̂₀ from the model output at σ (`convert_model_output` with a data-prediction algorithm). */
export const x0Prediction = (predictionType: PredictionType, modelOutput: tf.Tensor4D, sample: tf.Tensor4D, sigma: number): tf.Tensor4D =>
  tf.tidy(() => {
    const { alpha, sigma: s } = sigmaToAlphaSigma(sigma)
    return predictionType === "epsilon"
      ? tf.div(tf.sub(sample, tf.mul(modelOutput, s)), alpha)
      : tf.sub(tf.mul(sample, alpha), tf.mul(modelOutput, s))
  })

/** ε̂ from the model output at σ (`convert_model_output` with a noise-prediction algorithm). */
export const epsilonPrediction = (predictionType: PredictionType, modelOutput: tf.Tensor4D, sample: tf.Tensor4D, sigma: number): tf.Tensor4D =>
  tf.tidy(() => {
    if (predictionType === "epsilon") return tf.clone(modelOutput)
    const { alpha, sigma: s } = sigmaToAlphaSigma(sigma)
    return tf.add(tf.mul(modelOutput, alpha), tf.mul(sample, s))
  })

/** The last `order` converted model outputs (oldest first) and how many lower-order steps have run. */
export interface MultistepState {
  readonly outputs: ReadonlyArray<tf.Tensor4D>
  /** diffusers' `lower_order_nums`: steps taken so far, capped at the solver order. */
  readonly lowerOrderNums: number
  /** Appends an output (kept past the step's tidy), dropping the oldest beyond the order. */
  readonly push: (output: tf.Tensor4D) => void
  readonly countStep: () => void
  readonly dispose: () => void
}

export const multistepState = (order: number): MultistepState => {
  const outputs: Array<tf.Tensor4D> = []
  let lowerOrderNums = 0
  return {
    get outputs() {
      return outputs
    },
    get lowerOrderNums() {
      return lowerOrderNums
    },
    push: (output) => {
      outputs.push(tf.keep(output))
      while (outputs.length > order) outputs.shift()!.dispose()
    },
    countStep: () => {
      if (lowerOrderNums < order) lowerOrderNums++
    },
    dispose: () => {
      tf.dispose(outputs)
      outputs.length = 0
    }
  }
}
