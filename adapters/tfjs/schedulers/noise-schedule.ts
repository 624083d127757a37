import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { decodeConfig, type ModelConfigError, only, PositiveInt, requireThat } from "../model-config.ts"

/**
 * The DDPM forward process of a pipeline's `scheduler_config.json`, as diffusers' schedulers build it:
 * betas, alphas and their cumulative product, adding noise at a timestep, the v-prediction target and
 * the signal-to-noise ratio. Training (forward process, targets, min-SNR weights) and the samplers
 * share it. The arrays reproduce torch's float32 values bit for bit (see `torchLinspace`, `cumprod`).
 */

export const BetaSchedule = only(Schema.Literal("linear", "scaled_linear", "squaredcos_cap_v2"), "\"linear\", \"scaled_linear\" and \"squaredcos_cap_v2\"")
export const PredictionType = only(Schema.Literal("epsilon", "v_prediction"), "\"epsilon\" and \"v_prediction\"")
export type PredictionType = typeof PredictionType.Type

/**
 * The fields of a scheduler config the forward process reads. The sampler-specific ones are decoded (implemented
 * or refused) by the declared sampler's own schema, and a key neither knows is refused on a tfjs plan
 * (config-refusals.ts, unknown-config-keys.ts).
 */
export const NoiseScheduleConfig = Schema.Struct({
  num_train_timesteps: Schema.optionalWith(PositiveInt, { default: () => 1000 }),
  beta_start: Schema.optionalWith(Schema.Number, { default: () => 0.0001 }),
  beta_end: Schema.optionalWith(Schema.Number, { default: () => 0.02 }),
  beta_schedule: Schema.optionalWith(BetaSchedule, { default: () => "linear" as const }),
  trained_betas: Schema.optionalWith(Schema.NullOr(Schema.Array(Schema.Number)), { default: () => null }),
  prediction_type: Schema.optionalWith(PredictionType, { default: () => "epsilon" as const }),
  rescale_betas_zero_snr: Schema.optionalWith(Schema.Boolean, { default: () => false })
})
export type NoiseScheduleConfig = typeof NoiseScheduleConfig.Type

export interface NoiseSchedule {
  readonly config: NoiseScheduleConfig
  readonly predictionType: PredictionType
  readonly numTrainTimesteps: number
  /** float32, one per training timestep. */
  readonly betas: Float32Array
  readonly alphas: Float32Array
  /** ᾱ_t = Π_{s≤t} (1 − β_s). */
  readonly alphasCumprod: Float32Array
}

const f32 = Math.fround

/**
 * torch.linspace in float32 on the CPU: a float32 step, then start + step·i for the first half and
 * end − step·(n−1−i) for the second, each as one fused multiply-add (how torch's kernel compiles).
 */
const torchLinspace = (start: number, end: number, n: number): Float32Array => {
  const a = f32(start)
  const b = f32(end)
  const step = f32(f32(b - a) / (n - 1))
  const half = Math.floor(n / 2)
  // step·i is exact in float64 (24 + 10 bits), so one rounding of the sum is the fused result.
  return Float32Array.from({ length: n }, (_, i) => (i < half ? a + step * i : b - step * (n - 1 - i)))
}

/** torch.cumprod of float32 values: accumulated in float64, each output rounded to float32. */
const cumprod = (values: Float32Array): Float32Array => {
  const out = new Float32Array(values.length)
  let product = 1
  values.forEach((v, i) => {
    product *= v
    out[i] = product
  })
  return out
}

const oneMinus = (values: Float32Array): Float32Array => values.map((v) => f32(1 - v))

/** The Glide cosine schedule (`betas_for_alpha_bar`), computed in float64 like the reference, capped at 0.999. */
const squaredCosine = (n: number): Float32Array => {
  const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2
  return Float32Array.from({ length: n }, (_, i) => Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999))
}

/**
 * Zero terminal SNR (Lin et al. 2023, Algorithm 1): shift √ᾱ so the last is 0, rescale so the first
 * keeps its value, back to betas. Float32 like the reference, to within an ulp of ᾱ.
 */
const rescaleZeroTerminalSnr = (betas: Float32Array): Float32Array => {
  const root = cumprod(oneMinus(betas)).map((v) => f32(Math.sqrt(v)))
  const first = root[0]!
  const last = root[root.length - 1]!
  const scale = f32(first / f32(first - last))
  const bar = root.map((v) => {
    const shifted = f32(f32(v - last) * scale)
    return f32(shifted * shifted)
  })
  const alphas = bar.map((v, i) => (i === 0 ? v : f32(v / bar[i - 1]!)))
  return oneMinus(alphas)
}

export const noiseSchedule = (config: NoiseScheduleConfig): NoiseSchedule => {
  const n = config.num_train_timesteps
  const base = config.trained_betas !== null
    ? Float32Array.from(config.trained_betas)
    : config.beta_schedule === "linear"
    ? torchLinspace(config.beta_start, config.beta_end, n)
    : config.beta_schedule === "scaled_linear"
    ? torchLinspace(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), n).map((v) => f32(v * v))
    : squaredCosine(n)
  const betas = config.rescale_betas_zero_snr ? rescaleZeroTerminalSnr(base) : base
  const alphas = oneMinus(betas)
  return { config, predictionType: config.prediction_type, numTrainTimesteps: betas.length, betas, alphas, alphasCumprod: cumprod(alphas) }
}

/** Reads the forward process from a parsed scheduler_config.json (`file` names it in errors). */
export const decodeNoiseSchedule = (json: unknown, file: string): Effect.Effect<NoiseSchedule, ModelConfigError> =>
  decodeConfig(NoiseScheduleConfig, json, file).pipe(
    Effect.tap((c) =>
      requireThat(
        c.trained_betas === null || c.trained_betas.length === c.num_train_timesteps,
        file,
        `trained_betas has ${c.trained_betas?.length} values for num_train_timesteps ${c.num_train_timesteps}`
      )
    ),
    Effect.map(noiseSchedule)
  )

const checkTimestep = (schedule: NoiseSchedule, t: number) => {
  if (!Number.isInteger(t) || t < 0 || t >= schedule.numTrainTimesteps) {
    throw new Error(`timestep ${t} is outside the schedule's [0, ${schedule.numTrainTimesteps})`)
  }
}

/** √ᾱ_t and √(1 − ᾱ_t) in float32, as `add_noise` computes them. */
export const noiseCoefficients = (schedule: NoiseSchedule, t: number): { readonly signal: number; readonly noise: number } => {
  checkTimestep(schedule, t)
  const a = schedule.alphasCumprod[t]!
  return { signal: f32(Math.sqrt(a)), noise: f32(Math.sqrt(f32(1 - a))) }
}

/** One coefficient per batch row, shaped to broadcast over a tensor of rank `rank`. */
const perRow = (values: ReadonlyArray<number>, rank: number): tf.Tensor =>
  tf.tensor(values, [values.length, ...Array.from({ length: rank - 1 }, () => 1)], "float32")

/** Returns a·x + b·y with per-row coefficients. */
const combine = (x: tf.Tensor, a: ReadonlyArray<number>, y: tf.Tensor, b: ReadonlyArray<number>): tf.Tensor =>
  tf.tidy(() => tf.add(tf.mul(perRow(a, x.rank), x), tf.mul(perRow(b, y.rank), y)))

const rowsOf = (x: tf.Tensor, timesteps: ReadonlyArray<number>) => {
  if (timesteps.length !== x.shape[0]) throw new Error(`${timesteps.length} timesteps for a batch of ${x.shape[0]}`)
}

/** `scheduler.add_noise(x0, noise, t)`: √ᾱ_t·x0 + √(1 − ᾱ_t)·noise, one timestep per batch row. */
export const addNoise = <T extends tf.Tensor>(schedule: NoiseSchedule, original: T, noise: T, timesteps: ReadonlyArray<number>): T => {
  rowsOf(original, timesteps)
  const c = timesteps.map((t) => noiseCoefficients(schedule, t))
  return combine(original, c.map((x) => x.signal), noise, c.map((x) => x.noise)) as T
}

/** `scheduler.get_velocity(x0, noise, t)`: √ᾱ_t·noise − √(1 − ᾱ_t)·x0 (the v-prediction target). */
export const velocity = <T extends tf.Tensor>(schedule: NoiseSchedule, original: T, noise: T, timesteps: ReadonlyArray<number>): T => {
  rowsOf(original, timesteps)
  const c = timesteps.map((t) => noiseCoefficients(schedule, t))
  return combine(noise, c.map((x) => x.signal), original, c.map((x) => -x.noise)) as T
}

/** What the model learns to predict: the noise (epsilon) or the velocity (v_prediction). */
export const trainingTarget = <T extends tf.Tensor>(schedule: NoiseSchedule, original: T, noise: T, timesteps: ReadonlyArray<number>): T =>
  schedule.predictionType === "epsilon" ? tf.clone(noise) : velocity(schedule, original, noise, timesteps)

/** SNR_t = ᾱ_t / (1 − ᾱ_t), as diffusers' `compute_snr` (float32). */
export const signalToNoise = (schedule: NoiseSchedule, t: number): number => {
  const { signal, noise } = noiseCoefficients(schedule, t)
  const ratio = f32(signal / noise)
  return f32(ratio * ratio)
}
