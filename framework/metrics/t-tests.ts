import { studentTQuantile, studentTTwoSided } from "./student-t.ts"

/**
 * Means and differences of means with Student-t intervals and tests: the interval of a mean over
 * replicates (scipy.stats.ttest_1samp(...).confidence_interval), and Welch's unequal-variance test
 * of a difference (scipy.stats.ttest_ind(equal_var=False)) with Satterthwaite's degrees of freedom.
 */

/** What is known of a mean: its estimate, the variance of that estimate, and that variance's degrees of freedom (∞ when known). */
export interface MeanEvidence {
  readonly mean: number
  readonly variance: number
  readonly df: number
}

/** A sample mean: variance s²/n with n − 1 degrees of freedom. */
export const sampleMean = (values: ReadonlyArray<number>): MeanEvidence => {
  const n = values.length
  const mean = values.reduce((a, b) => a + b, 0) / n
  const s2 = n < 2 ? NaN : values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)
  return { mean, variance: s2 / n, df: n - 1 }
}

/** Sample standard deviation (ddof 1): the spread between replicates. */
export const sampleStandardDeviation = (values: ReadonlyArray<number>): number => Math.sqrt(sampleMean(values).variance * values.length)

export interface TInterval {
  readonly estimate: number
  readonly standardError: number
  readonly df: number
  readonly low: number
  readonly high: number
}

const intervalOf = (estimate: number, variance: number, df: number, level: number): TInterval => {
  const standardError = Math.sqrt(variance)
  const half = studentTQuantile(1 - (1 - level) / 2, df) * standardError
  return { estimate, standardError, df, low: estimate - half, high: estimate + half }
}

/** The `level` interval of a mean: estimate ± t(df)·√variance. */
export const meanInterval = (evidence: MeanEvidence, level: number): TInterval => intervalOf(evidence.mean, evidence.variance, evidence.df, level)

export interface DifferenceTest extends TInterval {
  readonly t: number
  /** Two-sided. */
  readonly p: number
}

/**
 * a − b with Welch–Satterthwaite degrees of freedom, (Σ vᵢ)² / Σ (vᵢ² / dfᵢ): with two sample
 * means this is Welch's test; a side whose variance is known (df = ∞) adds to the variance but
 * not to the uncertainty about it.
 */
export const differenceTest = (a: MeanEvidence, b: MeanEvidence, level: number): DifferenceTest => {
  const variance = a.variance + b.variance
  const share = (side: MeanEvidence) => (side.df === Infinity ? 0 : side.variance ** 2 / side.df)
  const spread = share(a) + share(b)
  const df = spread === 0 ? Infinity : variance ** 2 / spread
  const interval = intervalOf(a.mean - b.mean, variance, df, level)
  const t = interval.estimate / interval.standardError
  return { ...interval, t, p: variance === 0 ? (interval.estimate === 0 ? 1 : 0) : studentTTwoSided(t, df) }
}
