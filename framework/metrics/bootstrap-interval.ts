import { normalCdf, normalQuantile } from "./normal-distribution.ts"

/**
 * Confidence intervals from a bootstrap distribution, as scipy.stats.bootstrap computes them
 * (Efron & Tibshirani 1993, §14.3 and Eq. 15.36): the percentile interval, and the
 * bias-corrected and accelerated (BCa) interval, whose bias correction z0 comes from where the
 * observed value falls in the bootstrap distribution and whose acceleration a from the jackknife.
 * Given the same bootstrap distribution and jackknife values, these are scipy's numbers.
 */

/** `sorted`'s quantile at p, by scipy.stats.quantile's default ("linear", Hyndman & Fan type 7). */
export const quantileOfSorted = (sorted: Float64Array, p: number): number => {
  const n = sorted.length
  const jg = p * n + (1 - p)
  const g = jg % 1
  const j = Math.min(n - 1, Math.max(0, Math.floor(jg) - 1))
  const jp1 = Math.min(n - 1, Math.max(0, Math.floor(jg)))
  // (1 − g)·a + g·b as scipy writes it; g = 0 returns a itself, so an infinite neighbour cannot give 0·∞.
  return g === 0 ? sorted[j]! : (1 - g) * sorted[j]! + g * sorted[jp1]!
}

export interface Interval {
  readonly low: number
  readonly high: number
}

const sortedCopy = (values: Float64Array) => Float64Array.from(values).sort()

/** The central `level` interval of the bootstrap distribution itself. */
export const percentileInterval = (resampled: Float64Array, level: number): Interval => {
  const sorted = sortedCopy(resampled)
  const alpha = (1 - level) / 2
  return { low: quantileOfSorted(sorted, alpha), high: quantileOfSorted(sorted, 1 - alpha) }
}

/** Standard deviation of the bootstrap distribution (ddof 1): the bootstrap standard error. */
export const bootstrapStandardError = (resampled: Float64Array): number => {
  const n = resampled.length
  if (n < 2) return NaN
  let mean = 0
  for (const v of resampled) mean += v
  mean /= n
  let sum = 0
  for (const v of resampled) sum += (v - mean) ** 2
  return Math.sqrt(sum / (n - 1))
}

/**
 * The jackknife estimate of BCa's acceleration, from leave-one-out values of each resampled
 * sample (one array for a single sample or paired samples, one per sample otherwise). 0 when the
 * jackknife values do not vary (the acceleration is then undefined; the interval is bias-corrected only).
 */
export const bcaAcceleration = (jackknife: ReadonlyArray<Float64Array>): number => {
  let numerator = 0
  let denominator = 0
  for (const values of jackknife) {
    const n = values.length
    let mean = 0
    for (const v of values) mean += v
    mean /= n
    let cubes = 0
    let squares = 0
    for (const v of values) {
      const u = (n - 1) * (mean - v)
      cubes += u ** 3
      squares += u ** 2
    }
    numerator += cubes / n ** 3
    denominator += squares / n ** 2
  }
  return denominator > 0 ? numerator / (6 * denominator ** 1.5) : 0
}

/**
 * The BCa interval of `observed` given its bootstrap distribution and jackknife values. Where BCa
 * is undefined (the observed value lies outside every resample, a jackknife value is not finite)
 * the percentile interval is returned, and `method` says so.
 */
export const bcaInterval = (
  observed: number,
  resampled: Float64Array,
  jackknife: ReadonlyArray<Float64Array>,
  level: number
): Interval & { readonly method: "bca" | "percentile" } => {
  const sorted = sortedCopy(resampled)
  const n = sorted.length
  let below = 0
  let atOrBelow = 0
  for (const v of sorted) {
    if (v < observed) below++
    if (v <= observed) atOrBelow++
  }
  const z0 = normalQuantile((below + atOrBelow) / (2 * n))
  const a = bcaAcceleration(jackknife)
  const zAlpha = normalQuantile((1 - level) / 2)
  const adjusted = (z: number) => normalCdf(z0 + (z0 + z) / (1 - a * (z0 + z)))
  const lowP = adjusted(zAlpha)
  const highP = adjusted(-zAlpha)
  if (!Number.isFinite(lowP) || !Number.isFinite(highP) || !Number.isFinite(a)) {
    return { ...percentileInterval(resampled, level), method: "percentile" }
  }
  return { low: quantileOfSorted(sorted, lowP), high: quantileOfSorted(sorted, highP), method: "bca" }
}
