import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { decodeConfig, type ModelConfigError, only, onlyFalse } from "../model-config.ts"
import { type DiffusionScheduler, linearCombination, type SchedulerRun } from "./diffusion-scheduler.ts"
import { eulerAlphasCumprod } from "./euler.ts"
import { lambdaPoint, multistepConfigFields, type MultistepState, multistepState, x0Prediction } from "./multistep.ts"
import { convertSigmas, interpolate, logF32, sigmaSpacing, sigmaToT, trainingSigmas } from "./sigma-schedule.ts"
import { multistepTimesteps, roundHalfEven } from "./timestep-spacing.ts"

/**
 * diffusers' DPMSolverMultistepScheduler with the DPM-Solver++ data-prediction algorithms (Lu et al.
 * 2022): "dpmsolver++" (DPM++ 2M with solver_order 2, 3M with 3) and "sde-dpmsolver++" (DPM++ 2M SDE,
 * fresh noise each step), midpoint or Heun second-order corrections, lower orders at the start and
 * (for short runs) the end, as `DPMSolverMultistepScheduler.from_config(pipeline config)`.
 */

const f32 = Math.fround

export const DpmSolverMultistepConfig = Schema.Struct({
  ...multistepConfigFields,
  algorithm_type: Schema.optionalWith(
    only(
      Schema.Literal("dpmsolver++", "sde-dpmsolver++"),
      "\"dpmsolver++\" and \"sde-dpmsolver++\" (diffusers deprecates \"dpmsolver\" and \"sde-dpmsolver\")"
    ),
    { default: () => "dpmsolver++" as const }
  ),
  solver_type: Schema.optionalWith(only(Schema.Literal("midpoint", "heun"), "\"midpoint\" and \"heun\""), { default: () => "midpoint" as const }),
  euler_at_final: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** Clips λ = log(α/σ) from below for the cosine schedule; −∞ (diffusers writes -Infinity) clips nothing. */
  lambda_min_clipped: Schema.optionalWith(Schema.Number, { default: () => -Infinity }),
  // Only the learned variances change the step (they need a UNet that predicts them); a DDPM config's "fixed_small" does not.
  variance_type: Schema.optionalWith(
    Schema.NullOr(Schema.String).pipe(Schema.filter((v) => v !== "learned" && v !== "learned_range", {
      message: () => "sardine supports only fixed variances (learned ones need a UNet that predicts them)"
    })),
    { default: () => null }
  ),
  use_lu_lambdas: onlyFalse("sardine's own samplers, on the tfjs and ONNX engines, have no uniform-logSNR spacing")
})
export type DpmSolverMultistepConfig = typeof DpmSolverMultistepConfig.Type

/**
 * As the class's constructor does, a config saved by DEIS or UniPC ("deis" algorithm, "logrho" / "bh1" /
 * "bh2" solver type) becomes DPM-Solver++ with the midpoint solver.
 */
export const decodeDpmSolverMultistepConfig = (json: unknown, file: string): Effect.Effect<DpmSolverMultistepConfig, ModelConfigError> => {
  const config = { ...(json as Record<string, unknown>) }
  if (config.algorithm_type === "deis") config.algorithm_type = "dpmsolver++"
  if (["logrho", "bh1", "bh2"].includes(config.solver_type as string)) config.solver_type = "midpoint"
  return decodeConfig(DpmSolverMultistepConfig, config, file)
}

export interface MultistepScheduler extends DiffusionScheduler {
  /** σ at each step, then the σ after the last (float32, as `scheduler.sigmas`). */
  readonly sigmas: Float32Array
}

/** The first timestep past the schedule: λ below `lambda_min_clipped` is cut off (torch.searchsorted on the flipped λ). */
const lastTimestep = (alphasCumprod: Float32Array, lambdaMinClipped: number): number => {
  const lambdas = alphasCumprod.map((a) => f32(f32(Math.log(f32(Math.sqrt(a)))) - f32(Math.log(f32(Math.sqrt(f32(1 - a)))))))
  const clipped = lambdas.filter((l) => l < lambdaMinClipped).length
  return alphasCumprod.length - clipped
}

/** `set_timesteps`: integer timesteps and float32 σ (Karras / exponential σ round or truncate their timesteps as diffusers casts them). */
export const dpmSolverSchedule = (config: DpmSolverMultistepConfig, steps: number) => {
  const alphasCumprod = eulerAlphasCumprod(config)
  const table = trainingSigmas(alphasCumprod)
  const spacing = sigmaSpacing(config)
  const finalSigma = config.final_sigmas_type === "zero" ? 0 : table[0]
  const spaced = multistepTimesteps(config, steps, lastTimestep(alphasCumprod, config.lambda_min_clipped))
  if (spacing === "timesteps") {
    return { timesteps: spaced, sigmas: Float32Array.from([...spaced.map((t) => interpolate(t, table)), finalSigma]) }
  }
  const logSigmas = logF32(table)
  const sigmas = convertSigmas(spacing, config, [...table].reverse(), steps)
  // Karras timesteps are rounded except for the cosine schedule; the int64 cast truncates the rest.
  const round = spacing === "karras" && config.beta_schedule !== "squaredcos_cap_v2"
  const timesteps = sigmas.map((s) => sigmaToT(s, logSigmas)).map((t) => (round ? roundHalfEven(t) : Math.trunc(t)))
  return { timesteps, sigmas: Float32Array.from([...sigmas, finalSigma]) }
}

export const dpmSolverMultistepScheduler = (config: DpmSolverMultistepConfig, steps: number): MultistepScheduler => {
  const { timesteps, sigmas } = dpmSolverSchedule(config, steps)
  const n = timesteps.length
  const sde = config.algorithm_type === "sde-dpmsolver++"
  const start = (): SchedulerRun => {
    const state: MultistepState = multistepState(config.solver_order)
    return {
      step: (modelOutput, index, sample, noise) => {
        const lowerOrderFinal = index === n - 1 && (config.euler_at_final || (config.lower_order_final && n < 15) || config.final_sigmas_type === "zero")
        const lowerOrderSecond = index === n - 2 && config.lower_order_final && n < 15
        state.push(x0Prediction(config.prediction_type, modelOutput, sample, sigmas[index]!))
        const variance = sde ? noise(modelOutput.shape) : undefined
        const order = config.solver_order === 1 || state.lowerOrderNums < 1 || lowerOrderFinal
          ? 1
          : config.solver_order === 2 || state.lowerOrderNums < 2 || lowerOrderSecond
          ? 2
          : 3
        const next = tf.tidy(() => update(order, state.outputs, index, sample, variance))
        variance?.dispose()
        state.countStep()
        return next
      },
      dispose: () => state.dispose()
    }
  }

  const at = (i: number) => lambdaPoint(sigmas[i]!)

  const update = (order: 1 | 2 | 3, outputs: ReadonlyArray<tf.Tensor4D>, index: number, sample: tf.Tensor4D, noise: tf.Tensor4D | undefined): tf.Tensor4D => {
    const t = at(index + 1)
    const s0 = at(index)
    const h = f32(t.lambda - s0.lambda)
    const m0 = outputs[outputs.length - 1]!
    const expNeg = f32(Math.exp(-h))
    const ratio = f32(t.sigma / s0.sigma)
    if (!sde) {
      const first = f32(t.alpha * f32(expNeg - 1))
      if (order === 1) return linearCombination([[ratio, sample], [-first, m0]])
      const m1 = outputs[outputs.length - 2]!
      const s1 = at(index - 1)
      const h0 = f32(s0.lambda - s1.lambda)
      const r0 = f32(h0 / h)
      const d1: tf.Tensor4D = tf.mul(tf.sub(m0, m1), f32(1 / r0))
      if (order === 2) {
        return config.solver_type === "midpoint"
          ? linearCombination([[ratio, sample], [-first, m0], [-f32(0.5 * first), d1]])
          : linearCombination([[ratio, sample], [-first, m0], [f32(t.alpha * f32(f32(f32(expNeg - 1) / h) + 1)), d1]])
      }
      const m2 = outputs[outputs.length - 3]!
      const s2 = at(index - 2)
      const r1 = f32(f32(s1.lambda - s2.lambda) / h)
      const d10 = d1
      const d11: tf.Tensor4D = tf.mul(tf.sub(m1, m2), f32(1 / r1))
      const d1Third: tf.Tensor4D = tf.add(d10, tf.mul(tf.sub(d10, d11), f32(r0 / f32(r0 + r1))))
      const d2: tf.Tensor4D = tf.mul(tf.sub(d10, d11), f32(1 / f32(r0 + r1)))
      return linearCombination([
        [ratio, sample],
        [-first, m0],
        [f32(t.alpha * f32(f32(f32(expNeg - 1) / h) + 1)), d1Third],
        [-f32(t.alpha * f32(f32(f32(f32(expNeg - 1) + h) / f32(h * h)) - 0.5)), d2]
      ])
    }
    // SDE variants: x_t = (σ_t/σ_s)·e^{−h}·x + α_t(1 − e^{−2h})·D0 + … + σ_t·√(1 − e^{−2h})·z.
    const expNeg2 = f32(Math.exp(-2 * h))
    const decay = f32(ratio * expNeg)
    const first = f32(t.alpha * f32(1 - expNeg2))
    const noiseScale = f32(t.sigma * f32(Math.sqrt(f32(1 - expNeg2))))
    if (order === 1) return linearCombination([[decay, sample], [first, m0], [noiseScale, noise!]])
    const m1 = outputs[outputs.length - 2]!
    const s1 = at(index - 1)
    const r0 = f32(f32(s0.lambda - s1.lambda) / h)
    const d1: tf.Tensor4D = tf.mul(tf.sub(m0, m1), f32(1 / r0))
    const heunCoefficient = f32(t.alpha * f32(f32(f32(1 - expNeg2) / f32(-2 * h)) + 1))
    if (order === 2) {
      return config.solver_type === "midpoint"
        ? linearCombination([[decay, sample], [first, m0], [f32(0.5 * first), d1], [noiseScale, noise!]])
        : linearCombination([[decay, sample], [first, m0], [heunCoefficient, d1], [noiseScale, noise!]])
    }
    const m2 = outputs[outputs.length - 3]!
    const s2 = at(index - 2)
    const r1 = f32(f32(s1.lambda - s2.lambda) / h)
    const d11: tf.Tensor4D = tf.mul(tf.sub(m1, m2), f32(1 / r1))
    const d1Third: tf.Tensor4D = tf.add(d1, tf.mul(tf.sub(d1, d11), f32(r0 / f32(r0 + r1))))
    const d2: tf.Tensor4D = tf.mul(tf.sub(d1, d11), f32(1 / f32(r0 + r1)))
    const twoH = f32(2 * h)
    return linearCombination([
      [decay, sample],
      [first, m0],
      [heunCoefficient, d1Third],
      [f32(t.alpha * f32(f32(f32(f32(1 - expNeg2) - twoH) / f32(twoH * twoH)) - 0.5)), d2],
      [noiseScale, noise!]
    ])
  }

  return { timesteps, sigmas, initNoiseSigma: 1, scaleModelInput: (sample) => sample, start }
}
