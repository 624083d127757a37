import { Effect } from "effect"
import { sortFloat32 } from "./float32-sort.ts"
import { checkSampleImage, MetricInputError, selectedValues, type SampleImage } from "./metric-input.ts"
import { digamma, inverseTrigamma, tetragamma, trigamma } from "./special-functions.ts"

/** The quantile levels reported, with the key each one has in `AmplitudeStatistics`. */
export const QUANTILES = [
  ["q01", 0.01],
  ["q05", 0.05],
  ["q25", 0.25],
  ["q50", 0.5],
  ["q75", 0.75],
  ["q95", 0.95],
  ["q99", 0.99]
] as const

type QuantileKey = (typeof QUANTILES)[number][0]

/**
 * Statistics of linear amplitude A over the selected pixels (DESIGN §6). Moments are population
 * moments (divide by n). Quantiles interpolate linearly between order statistics (numpy's
 * default). Log-cumulants are those of intensity I = A², over the pixels with A > 0 (a zero has
 * no logarithm); `gammaLooks` solves ψ1(L) = k2 and `g0*` solve the G0 intensity system
 * k2 = ψ1(L) + ψ1(−α), k3 = ψ2(L) − ψ2(−α), k1 = ln(γ/L) + ψ(L) − ψ(−α). A value the data do not
 * determine (a constant image, no G0 solution) is NaN or Infinity; JSON prints it as null.
 */
export type AmplitudeStatistics = {
  readonly count: number
  readonly mean: number
  readonly std: number
  /** std / mean. */
  readonly cv: number
  /** Intensity ENL: mean(I)² / var(I), I = A². */
  readonly enl: number
  readonly logCumulant1: number
  readonly logCumulant2: number
  readonly logCumulant3: number
  readonly gammaLooks: number
  readonly g0Alpha: number
  readonly g0Gamma: number
  readonly g0Looks: number
} & { readonly [K in QuantileKey]: number }

/** numpy.quantile's default ("linear") on sorted values, including its lerp that is exact at t = 1. */
export const quantileOfSorted = (sorted: Float32Array | Float64Array, p: number): number => {
  const h = (sorted.length - 1) * p
  const lo = Math.floor(h)
  const a = sorted[lo]!
  if (lo + 1 >= sorted.length) return a
  const b = sorted[lo + 1]!
  const t = h - lo
  const diff = b - a
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t
}

export interface LogCumulants {
  readonly k1: number
  readonly k2: number
  readonly k3: number
}

/**
 * Sample log-cumulants of I = A² over the samples with A > 0 (population central moments).
 * Moments are taken about the first value, then about the mean, so that equal samples give
 * exactly zero spread.
 */
export const intensityLogCumulants = (amplitude: Float32Array): LogCumulants => {
  let n = 0
  let shift = NaN
  let sum = 0
  for (let i = 0; i < amplitude.length; i++) {
    const a = amplitude[i]!
    if (a > 0) {
      const l = Math.log(a * a)
      if (n === 0) shift = l
      sum += l - shift
      n++
    }
  }
  if (n === 0) return { k1: NaN, k2: NaN, k3: NaN }
  const meanShifted = sum / n
  let m2 = 0
  let m3 = 0
  for (let i = 0; i < amplitude.length; i++) {
    const a = amplitude[i]!
    if (a > 0) {
      const d = Math.log(a * a) - shift - meanShifted
      const d2 = d * d
      m2 += d2
      m3 += d2 * d
    }
  }
  return { k1: shift + meanShifted, k2: m2 / n, k3: m3 / n }
}

/** Number of looks L of Gamma-distributed intensity from its second log-cumulant: ψ1(L) = k2. */
export const gammaLooksFromLogCumulants = (k: LogCumulants): number => inverseTrigamma(k.k2)

export interface G0Parameters {
  readonly alpha: number
  readonly gamma: number
  readonly looks: number
}

const NO_G0: G0Parameters = { alpha: NaN, gamma: NaN, looks: NaN }

/**
 * G0 intensity parameters by the method of log-cumulants with the number of looks unknown.
 * For a given L, k2 fixes −α = ψ1⁻¹(k2 − ψ1(L)) (L must exceed L_min = ψ1⁻¹(k2)); the k3
 * equation then leaves one unknown, found by bisection on ln L over (L_min, 1e10). No sign
 * change there means the log-cumulants fit no G0 law (for example too little skew): NaN.
 */
export const g0FromLogCumulants = (k: LogCumulants): G0Parameters => {
  if (!(k.k2 > 0) || !Number.isFinite(k.k3)) return NO_G0
  const minLooks = inverseTrigamma(k.k2)
  const minusAlpha = (looks: number) => inverseTrigamma(k.k2 - trigamma(looks))
  const residual = (looks: number) => tetragamma(looks) - tetragamma(minusAlpha(looks)) - k.k3
  let lo = Math.log(minLooks)
  let hi = Math.log(1e10)
  // At L_min, −α is infinite and ψ2(−α) = 0.
  const atLo = tetragamma(minLooks) - k.k3
  const atHi = residual(Math.exp(hi))
  if (!(lo < hi) || !(atLo < 0 && atHi > 0)) return NO_G0
  for (let i = 0; i < 200 && hi - lo > 1e-15 * Math.max(1, Math.abs(lo)); i++) {
    const mid = 0.5 * (lo + hi)
    if (residual(Math.exp(mid)) < 0) lo = mid
    else hi = mid
  }
  const looks = Math.exp(0.5 * (lo + hi))
  const a = minusAlpha(looks)
  return { alpha: -a, gamma: looks * Math.exp(k.k1 - digamma(looks) + digamma(a)), looks }
}

/** Fails with a MetricInputError when a selected amplitude is negative. */
const checkNonNegative = (name: string, values: Float32Array): Effect.Effect<void, MetricInputError> => {
  for (let i = 0; i < values.length; i++) {
    if (values[i]! < 0) {
      return Effect.fail(
        new MetricInputError({ input: name, reason: `amplitude ${values[i]} is negative (selected pixel ${i})` })
      )
    }
  }
  return Effect.void
}

export const amplitudeStatistics = (image: SampleImage): Effect.Effect<AmplitudeStatistics, MetricInputError> =>
  Effect.gen(function*() {
    const count = yield* checkSampleImage(image)
    const values = selectedValues(image, count)
    yield* checkNonNegative(image.name, values)
    // Sums about the first value keep a constant image's spread exactly zero.
    const shift = values[0]!
    const shiftI = shift * shift
    let sum = 0
    let sumI = 0
    for (let i = 0; i < count; i++) {
      const a = values[i]!
      sum += a - shift
      sumI += a * a - shiftI
    }
    const mean = shift + sum / count
    const meanI = shiftI + sumI / count
    let m2 = 0
    let m2I = 0
    for (let i = 0; i < count; i++) {
      const a = values[i]!
      const d = a - mean
      const dI = a * a - meanI
      m2 += d * d
      m2I += dI * dI
    }
    const std = Math.sqrt(m2 / count)
    const k = intensityLogCumulants(values)
    const g0 = g0FromLogCumulants(k)
    const sorted = sortFloat32(values)
    const quantiles = Object.fromEntries(QUANTILES.map(([key, p]) => [key, quantileOfSorted(sorted, p)])) as {
      [K in QuantileKey]: number
    }
    return {
      count,
      mean,
      std,
      cv: std / mean,
      enl: (meanI * meanI) / (m2I / count),
      ...quantiles,
      logCumulant1: k.k1,
      logCumulant2: k.k2,
      logCumulant3: k.k3,
      gammaLooks: gammaLooksFromLogCumulants(k),
      g0Alpha: g0.alpha,
      g0Gamma: g0.gamma,
      g0Looks: g0.looks
    }
  })
