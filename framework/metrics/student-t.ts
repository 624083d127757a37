import { normalCdf, normalQuantile } from "./normal-distribution.ts"

/**
 * Student's t distribution with ν > 0 degrees of freedom (ν need not be an integer: Welch's test
 * gives fractional ones; ν = ∞ is the standard normal), as scipy.stats.t computes it.
 *
 * The tail probability is the regularized incomplete beta function,
 * P(|T| > t) = I_{ν/(ν+t²)}(ν/2, ½), evaluated by its continued fraction (modified Lentz) on the
 * side of the symmetry point where it converges fast; ln Γ by Lanczos' approximation (g = 7, nine
 * terms, ~1e-15 relative). Quantiles invert the distribution function by safeguarded Newton steps.
 */

const lanczos = [
  0.9999999999998099,
  676.5203681218851,
  -1259.1392167224028,
  771.3234287776531,
  -176.6150291621406,
  12.507343278686905,
  -0.13857109526572012,
  9.984369578019572e-6,
  1.5056327351493116e-7
]

/** ln Γ(x) for x > 0. */
export const logGamma = (x: number): number => {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x)
  const z = x - 1
  let sum = lanczos[0]!
  for (let i = 1; i < lanczos.length; i++) sum += lanczos[i]! / (z + i)
  const t = z + 7.5
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum)
}

const tiny = 1e-300

/** The continued fraction of I_x(a, b) (Numerical Recipes §6.4), converging for x < (a + 1) / (a + b + 2). */
const betaContinuedFraction = (a: number, b: number, x: number): number => {
  let c = 1
  let d = 1 - ((a + b) * x) / (a + 1)
  if (Math.abs(d) < tiny) d = tiny
  d = 1 / d
  let h = d
  for (let m = 1; m <= 10_000; m++) {
    const m2 = 2 * m
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2))
    d = 1 + aa * d
    if (Math.abs(d) < tiny) d = tiny
    c = 1 + aa / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    h *= d * c
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1))
    d = 1 + aa * d
    if (Math.abs(d) < tiny) d = tiny
    c = 1 + aa / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    const delta = d * c
    h *= delta
    if (Math.abs(delta - 1) < 1e-16) break
  }
  return h
}

/** The regularized incomplete beta function I_x(a, b) for a, b > 0 and x in [0, 1]. */
export const regularizedIncompleteBeta = (x: number, a: number, b: number): number => {
  if (Number.isNaN(x) || !(a > 0) || !(b > 0)) return NaN
  if (x <= 0) return 0
  if (x >= 1) return 1
  const front = Math.exp(a * Math.log(x) + b * Math.log1p(-x) - (logGamma(a) + logGamma(b) - logGamma(a + b)))
  return x < (a + 1) / (a + b + 2)
    ? (front * betaContinuedFraction(a, b, x)) / a
    : 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b
}

/** P(|T| ≥ |t|): the two-sided tail probability (2 · scipy.stats.t.sf(|t|, ν)). */
export const studentTTwoSided = (t: number, df: number): number => {
  if (Number.isNaN(t) || !(df > 0)) return NaN
  if (!Number.isFinite(t)) return 0
  if (df === Infinity) return 2 * normalCdf(-Math.abs(t))
  return regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5)
}

/** P(T ≤ t) (scipy.stats.t.cdf). */
export const studentTCdf = (t: number, df: number): number => {
  if (Number.isNaN(t) || !(df > 0)) return NaN
  if (df === Infinity) return normalCdf(t)
  const tail = 0.5 * regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5)
  return t < 0 ? tail : 1 - tail
}

const density = (t: number, df: number) =>
  Math.exp(logGamma((df + 1) / 2) - logGamma(df / 2) - 0.5 * Math.log(df * Math.PI) - ((df + 1) / 2) * Math.log1p((t * t) / df))

/** The t with P(T ≤ t) = p (scipy.stats.t.ppf). */
export const studentTQuantile = (p: number, df: number): number => {
  if (!(p >= 0 && p <= 1) || !(df > 0)) return NaN
  if (p === 0) return -Infinity
  if (p === 1) return Infinity
  if (p === 0.5) return 0
  if (df === Infinity) return normalQuantile(p)
  // Solve in the lower tail; the upper by symmetry.
  const q = p < 0.5 ? p : 1 - p
  let lo = -1
  while (studentTCdf(lo, df) > q) lo *= 2
  let hi = 0
  let x = Math.max(lo, normalQuantile(q))
  for (let i = 0; i < 200; i++) {
    const f = studentTCdf(x, df) - q
    if (f > 0) hi = x
    else lo = x
    const newton = x - f / density(x, df)
    const next = newton > lo && newton < hi ? newton : 0.5 * (lo + hi)
    if (Math.abs(next - x) <= 1e-15 * Math.max(1, Math.abs(x))) {
      x = next
      break
    }
    x = next
  }
  return p < 0.5 ? x : -x
}
