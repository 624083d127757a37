import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { decodeConfig, type ModelConfigError, only } from "../model-config.ts"
import type { SchedulerRun } from "./diffusion-scheduler.ts"
import type { MultistepScheduler } from "./dpm-solver-multistep.ts"
import { eulerAlphasCumprod } from "./euler.ts"
import { epsilonPrediction, lambdaPoint, multistepConfigFields, multistepState, x0Prediction } from "./multistep.ts"
import { convertSigmas, interpolate, logF32, sigmaSpacing, sigmaToT, trainingSigmas } from "./sigma-schedule.ts"
import { multistepTimesteps, roundHalfEven } from "./timestep-spacing.ts"

/**
 * diffusers' UniPCMultistepScheduler (Zhao et al. 2023): a multistep predictor (UniP) and, from the
 * second step, a corrector (UniC) that reuses the model call of the new point, in the B(h) = h ("bh1")
 * or e^h − 1 ("bh2") variants, on data (x̂₀) or noise predictions, as
 * `UniPCMultistepScheduler.from_config(pipeline config)`.
 */

const f32 = Math.fround

export const UniPcMultistepConfig = Schema.Struct({
  ...multistepConfigFields,
  predict_x0: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  solver_type: Schema.optionalWith(only(Schema.Literal("bh1", "bh2"), "\"bh1\" and \"bh2\""), { default: () => "bh2" as const }),
  /** Steps (0-based) whose corrector is skipped. */
  disable_corrector: Schema.optionalWith(Schema.Array(Schema.Int), { default: () => [] }),
  solver_p: Schema.optionalWith(only(Schema.Null, "null (no external predictor scheduler)"), { default: () => null }),
  // diffusers accepts it only with flow sigmas (refused).
  shift_terminal: Schema.optionalWith(only(Schema.Null, "null (flow-matching models)"), { default: () => null })
})
export type UniPcMultistepConfig = typeof UniPcMultistepConfig.Type

/** As the class's constructor does, another solver's `solver_type` (a config saved by DPM-Solver) becomes "bh2". */
export const decodeUniPcMultistepConfig = (json: unknown, file: string): Effect.Effect<UniPcMultistepConfig, ModelConfigError> => {
  const config = json as Record<string, unknown>
  const foreign = ["midpoint", "heun", "logrho"].includes(config.solver_type as string)
  return decodeConfig(UniPcMultistepConfig, foreign ? { ...config, solver_type: "bh2" } : json, file)
}

/** `set_timesteps`: integer timesteps and float32 σ. Respaced σ end at their own last value for "sigma_min". */
export const uniPcSchedule = (config: UniPcMultistepConfig, steps: number) => {
  const alphasCumprod = eulerAlphasCumprod(config)
  const table = trainingSigmas(alphasCumprod)
  const spacing = sigmaSpacing(config)
  const spaced = multistepTimesteps(config, steps, config.num_train_timesteps)
  if (spacing === "timesteps") {
    const finalSigma = config.final_sigmas_type === "zero" ? 0 : table[0]
    return { timesteps: spaced, sigmas: Float32Array.from([...spaced.map((t) => interpolate(t, table)), finalSigma]) }
  }
  const logSigmas = logF32(table)
  const sigmas = convertSigmas(spacing, config, [...table].reverse(), steps)
  // Karras timesteps are rounded; exponential ones truncated by the int64 cast.
  const timesteps = sigmas.map((s) => sigmaToT(s, logSigmas)).map((t) => (spacing === "karras" ? roundHalfEven(t) : Math.trunc(t)))
  const finalSigma = config.final_sigmas_type === "zero" ? 0 : sigmas[sigmas.length - 1]
  return { timesteps, sigmas: Float32Array.from([...sigmas, finalSigma]) }
}

/** Solves A·x = b by Gaussian elimination with partial pivoting (the systems are 2×2 or 3×3). */
const solve = (a: ReadonlyArray<ReadonlyArray<number>>, b: ReadonlyArray<number>): Array<number> => {
  const n = b.length
  const m = a.map((row, i) => [...row, b[i]!])
  for (let c = 0; c < n; c++) {
    const pivot = m.slice(c).reduce((best, row, i) => (Math.abs(row[c]!) > Math.abs(m[best]![c]!) ? c + i : best), c)
    ;[m[c], m[pivot]] = [m[pivot]!, m[c]!]
    for (let r = c + 1; r < n; r++) {
      const factor = m[r]![c]! / m[c]![c]!
      for (let k = c; k <= n; k++) m[r]![k]! -= factor * m[c]![k]!
    }
  }
  const x = new Array<number>(n).fill(0)
  for (let r = n - 1; r >= 0; r--) {
    let sum = m[r]![n]!
    for (let k = r + 1; k < n; k++) sum -= m[r]![k]! * x[k]!
    x[r] = sum / m[r]![r]!
  }
  return x.map(f32)
}

export const uniPcMultistepScheduler = (config: UniPcMultistepConfig, steps: number): MultistepScheduler => {
  // At σ = 0 the step size h is infinite: diffusers' last step is NaN unless it is first order with B(h) = e^h − 1.
  if (config.final_sigmas_type === "zero" && (config.solver_type === "bh1" || !config.lower_order_final)) {
    throw new Error(
      `final_sigmas_type "zero" needs solver_type "bh2" and lower_order_final true (diffusers' UniPC ends in NaN otherwise); ` +
        `set final_sigmas_type to "sigma_min"`
    )
  }
  const { timesteps, sigmas } = uniPcSchedule(config, steps)
  const n = timesteps.length
  const convert = config.predict_x0 ? x0Prediction : epsilonPrediction
  const at = (i: number) => lambdaPoint(sigmas[i]!)

  /**
   * The shared part of `multistep_uni_p_bh_update` and `multistep_uni_c_bh_update`: from σ index `from`
   * to `to`, with earlier outputs at σ indices `earlier` (newest first). Returns x_t without the
   * correction terms, the correction's scale −α_t·B(h) (σ_t·B(h) for noise prediction), the ratios r_k
   * with the differences D1_k, and the right-hand sides R, b of the order conditions.
   */
  const terms = (
    from: number,
    to: number,
    earlier: ReadonlyArray<number>,
    x: tf.Tensor4D,
    m0: tf.Tensor4D,
    previous: ReadonlyArray<tf.Tensor4D>,
    order: number
  ) => {
    const t = at(to)
    const s0 = at(from)
    const h = f32(t.lambda - s0.lambda)
    const rks = earlier.map((si) => f32(f32(at(si).lambda - s0.lambda) / h))
    const d1s = rks.map((rk, k): tf.Tensor4D => tf.div(tf.sub(previous[k]!, m0), rk))
    rks.push(1)
    const hh = config.predict_x0 ? -h : h
    const hPhi1 = f32(Math.expm1(hh))
    let hPhiK = f32(f32(hPhi1 / hh) - 1)
    const bH = config.solver_type === "bh1" ? hh : f32(Math.expm1(hh))
    const r: Array<Array<number>> = []
    const b: Array<number> = []
    let factorial = 1
    for (let i = 1; i <= order; i++) {
      r.push(rks.map((rk) => f32(rk ** (i - 1))))
      b.push(f32(f32(hPhiK * factorial) / bH))
      factorial *= i + 1
      hPhiK = f32(f32(hPhiK / hh) - f32(1 / factorial))
    }
    const base: tf.Tensor4D = config.predict_x0
      ? tf.sub(tf.mul(x, f32(t.sigma / s0.sigma)), tf.mul(m0, f32(t.alpha * hPhi1)))
      : tf.sub(tf.mul(x, f32(t.alpha / s0.alpha)), tf.mul(m0, f32(t.sigma * hPhi1)))
    const scale = config.predict_x0 ? f32(t.alpha * bH) : f32(t.sigma * bH)
    return { base, scale, d1s, r, b }
  }
  const weighted = (rhos: ReadonlyArray<number>, tensors: ReadonlyArray<tf.Tensor4D>): tf.Tensor4D =>
    tensors.slice(1).reduce<tf.Tensor4D>((sum, d, k) => tf.add(sum, tf.mul(d, rhos[k + 1]!)), tf.mul(tensors[0]!, rhos[0]!))

  const start = (): SchedulerRun => {
    const state = multistepState(config.solver_order)
    let lastSample: tf.Tensor4D | undefined
    let lastOrder = 1
    const forget = () => {
      lastSample?.dispose()
      lastSample = undefined
    }
    return {
      step: (modelOutput, index, sample) => {
        const converted = convert(config.prediction_type, modelOutput, sample, sigmas[index]!)
        const corrected = index > 0 && lastSample !== undefined && !config.disable_corrector.includes(index - 1)
          ? tf.tidy((): tf.Tensor4D => {
            // UniC: from the last point to this one, with the model output here as the extra slope.
            const previous = state.outputs.slice(0, -1).reverse()
            const m0 = state.outputs[state.outputs.length - 1]!
            const earlier = Array.from({ length: lastOrder - 1 }, (_, i) => index - (i + 2))
            const { base, scale, d1s, r, b } = terms(index - 1, index, earlier, lastSample!, m0, previous, lastOrder)
            const rhos = lastOrder === 1 ? [0.5] : solve(r, b)
            const slope: tf.Tensor4D = tf.sub(converted, m0)
            const correction: tf.Tensor4D = d1s.length > 0
              ? tf.add(weighted(rhos.slice(0, -1), d1s), tf.mul(slope, rhos[rhos.length - 1]!))
              : tf.mul(slope, rhos[rhos.length - 1]!)
            return tf.sub(base, tf.mul(correction, scale))
          })
          : sample
        state.push(converted)
        const order = Math.min(config.lower_order_final ? Math.min(config.solver_order, n - index) : config.solver_order, state.lowerOrderNums + 1)
        forget()
        lastSample = tf.keep(corrected === sample ? tf.clone(sample) : corrected)
        lastOrder = order
        // UniP: from this point to the next.
        const next = tf.tidy((): tf.Tensor4D => {
          const previous = state.outputs.slice(0, -1).reverse()
          const m0 = state.outputs[state.outputs.length - 1]!
          const earlier = Array.from({ length: order - 1 }, (_, i) => index - (i + 1))
          const { base, scale, d1s, r, b } = terms(index, index + 1, earlier, lastSample!, m0, previous, order)
          if (d1s.length === 0) return base
          const rhos = order === 2 ? [0.5] : solve(r.slice(0, -1).map((row) => row.slice(0, -1)), b.slice(0, -1))
          return tf.sub(base, tf.mul(weighted(rhos, d1s), scale))
        })
        state.countStep()
        return next
      },
      dispose: () => {
        forget()
        state.dispose()
      }
    }
  }
  return { timesteps, sigmas, initNoiseSigma: 1, scaleModelInput: (sample) => sample, start }
}
