import { Schema } from "effect"
import { onlyFalse } from "../model-config.ts"
import { sqrtF32 } from "./diffusion-scheduler.ts"

/**
 * The σ-space helpers diffusers' k-diffusion-style schedulers share (Euler, Euler ancestral, Heun,
 * DPM-Solver, UniPC): σ = √((1 − ᾱ)/ᾱ) per training step, np.interp into it, the Karras et al. (2022)
 * and exponential σ spacings, and `_sigma_to_t`, the (fractional) timestep of a σ. The arithmetic is
 * numpy's (float64 unless the reference works on float32 arrays), so the results are diffusers' to
 * float32 rounding.
 */

const f32 = Math.fround

/** σ_t of every training step, float32 as torch computes `((1 − ᾱ) / ᾱ) ** 0.5`. */
export const trainingSigmas = (alphasCumprod: Float32Array): Float32Array => alphasCumprod.map((a) => sqrtF32(f32(f32(1 - a) / a)))

/** np.interp of a (possibly fractional) timestep into per-training-step values, in float64. */
export const interpolate = (t: number, table: ArrayLike<number>): number => {
  if (t <= 0) return table[0]!
  const j = Math.floor(t)
  if (j >= table.length - 1) return table[table.length - 1]!
  return j === t ? table[j]! : (table[j + 1]! - table[j]!) * (t - j) + table[j]!
}

/** np.linspace(start, stop, n) in float64: start + i·step, the last value exactly `stop`. */
export const linspace = (start: number, stop: number, n: number): Array<number> => {
  const step = n > 1 ? (stop - start) / (n - 1) : 0
  return Array.from({ length: n }, (_, i) => (n > 1 && i === n - 1 ? stop : i * step + start))
}

/** Which σ spacing a config asks for; at most one of the flags may be set, as diffusers checks. */
export type SigmaSpacing = "timesteps" | "karras" | "exponential"

/** The config fields of the σ spacings (the Euler, Heun, DPM-Solver and UniPC classes read them). */
export const sigmaSpacingFields = {
  use_karras_sigmas: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  use_exponential_sigmas: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  use_beta_sigmas: onlyFalse("the beta sigma schedule needs scipy's beta quantiles"),
  /** Karras / exponential end points; null takes them from the schedule. */
  sigma_min: Schema.optionalWith(Schema.NullOr(Schema.Number), { default: () => null }),
  sigma_max: Schema.optionalWith(Schema.NullOr(Schema.Number), { default: () => null })
}

export interface SigmaSpacingConfig {
  readonly use_karras_sigmas: boolean
  readonly use_exponential_sigmas: boolean
  readonly sigma_min: number | null
  readonly sigma_max: number | null
}

/** The spacing a config selects, or the reason diffusers refuses it ("Only one of … can be used"). */
export const sigmaSpacing = (config: SigmaSpacingConfig): SigmaSpacing => {
  if (config.use_karras_sigmas && config.use_exponential_sigmas) {
    throw new Error("use_karras_sigmas and use_exponential_sigmas: only one of them can be true")
  }
  return config.use_karras_sigmas ? "karras" : config.use_exponential_sigmas ? "exponential" : "timesteps"
}

/**
 * `_convert_to_karras` / `_convert_to_exponential`: `n` σ from σ_max down to σ_min (the config's, else
 * the first and last of `descending`), float64. Karras: ρ = 7 interpolation of σ^(1/ρ).
 */
export const convertSigmas = (spacing: "karras" | "exponential", config: SigmaSpacingConfig, descending: ArrayLike<number>, n: number): Array<number> => {
  const sigmaMin = config.sigma_min ?? descending[descending.length - 1]!
  const sigmaMax = config.sigma_max ?? descending[0]!
  if (spacing === "exponential") return linspace(Math.log(sigmaMax), Math.log(sigmaMin), n).map(Math.exp)
  const rho = 7
  const minInvRho = sigmaMin ** (1 / rho)
  const maxInvRho = sigmaMax ** (1 / rho)
  return linspace(0, 1, n).map((ramp) => (maxInvRho + ramp * (minInvRho - maxInvRho)) ** rho)
}

/** np.log of a float32 array: float32 values. */
export const logF32 = (values: Float32Array): Float32Array => values.map((v) => f32(Math.log(v)))

/**
 * `_sigma_to_t`: the fractional training timestep whose σ is `sigma`, by linear interpolation of log σ
 * between the two neighbouring training steps (`logSigmas` ascending, float32 as the reference's).
 */
export const sigmaToT = (sigma: number, logSigmas: Float32Array): number => {
  const logSigma = Math.log(Math.max(sigma, 1e-10))
  let count = 0
  for (const l of logSigmas) if (logSigma - l >= 0) count++
  // argmax of the cumulative count: the last step with log σ ≤ log sigma (0 when there is none).
  const low = Math.min(Math.max(count - 1, 0), logSigmas.length - 2)
  const high = low + 1
  // The difference of two float32 entries is a float32 in numpy.
  const w = Math.min(Math.max((logSigmas[low]! - logSigma) / f32(logSigmas[low]! - logSigmas[high]!), 0), 1)
  return (1 - w) * low + w * high
}

/** The inference schedule of the Euler-family schedulers: float32 timesteps and σ (one more than the steps). */
export interface DiscreteSigmas {
  readonly timesteps: Array<number>
  readonly sigmas: Float32Array
}

/**
 * `set_timesteps` of EulerDiscreteScheduler, EulerAncestralDiscreteScheduler and HeunDiscreteScheduler
 * before Heun's doubling: σ interpolated at the spaced timesteps (or respaced by Karras / exponential,
 * the timesteps then following σ), then `finalSigma`.
 */
export const discreteSigmas = (
  alphasCumprod: Float32Array,
  timesteps: ReadonlyArray<number>,
  spacing: SigmaSpacing,
  config: SigmaSpacingConfig,
  finalSigma: number
): DiscreteSigmas => {
  const table = trainingSigmas(alphasCumprod)
  const interpolated = timesteps.map((t) => interpolate(t, table))
  if (spacing === "timesteps") return { timesteps: [...timesteps], sigmas: Float32Array.from([...interpolated, finalSigma]) }
  const logSigmas = logF32(table)
  const sigmas = convertSigmas(spacing, config, interpolated, timesteps.length)
  return { timesteps: sigmas.map((s) => f32(sigmaToT(s, logSigmas))), sigmas: Float32Array.from([...sigmas, finalSigma]) }
}

/** `init_noise_sigma` of the Euler family: the largest σ, or √(σ² + 1) of it for "leading" spacing. */
export const eulerInitNoiseSigma = (sigmas: Float32Array, timestepSpacing: string): number => {
  const maxSigma = Math.max(...sigmas)
  return timestepSpacing === "leading" ? sqrtF32(f32(f32(maxSigma * maxSigma) + 1)) : maxSigma
}

/** √(σ² + 1) in float32: `scale_model_input` divides by it. */
export const inputScale = (sigma: number): number => sqrtF32(f32(f32(sigma * sigma) + 1))
