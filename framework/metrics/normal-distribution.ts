/**
 * The standard normal distribution: Φ (scipy.special.ndtr) and Φ⁻¹ (scipy.special.ndtri), to
 * double precision, for bootstrap intervals (BCa) and z scores.
 *
 * Φ(x) = ½ erfc(−x/√2), with erfc from W. J. Cody's rational Chebyshev approximations (Math.
 * Comp. 1969; netlib specfun CALERF), which keep their relative accuracy far into the tails. Φ⁻¹
 * starts from Abramowitz & Stegun 26.2.23 (error < 4.5e-4) and polishes with Halley steps on Φ.
 */

const erfSmall = {
  a: [3.1611237438705656, 113.864154151050156, 377.485237685302021, 3209.37758913846947, 0.185777706184603153],
  b: [23.6012909523441209, 244.024637934444173, 1282.61652607737228, 2844.23683343917062]
}
const erfcMiddle = {
  c: [
    0.564188496988670089, 8.88314979438837594, 66.1191906371416295, 298.635138197400131, 881.95222124176909,
    1712.04761263407058, 2051.07837782607147, 1230.33935479799725, 2.15311535474403846e-8
  ],
  d: [
    15.7449261107098347, 117.693950891312499, 537.181101862009858, 1621.38957456669019, 3290.79923573345963,
    4362.61909014324716, 3439.36767414372164, 1230.33935480374942
  ]
}
const erfcLarge = {
  p: [0.305326634961232344, 0.360344899949804439, 0.125781726111229246, 0.0160837851487422766, 6.58749161529837803e-4, 0.0163153871373020978],
  q: [2.56852019228982242, 1.87295284992346047, 0.527905102951428412, 0.0605183413124413191, 0.00233520497626869185]
}
const oneOverSqrtPi = 0.56418958354775628695

/** exp(−y²) without the cancellation of squaring y whole: y = ⌊16y⌋/16 + rest. */
const expMinusSquare = (y: number) => {
  const head = Math.trunc(y * 16) / 16
  const rest = (y - head) * (y + head)
  return Math.exp(-head * head) * Math.exp(-rest)
}

/** erfc(y) for y ≥ 0.46875 (Cody's middle and large-argument approximations). */
const erfcTail = (y: number): number => {
  if (y <= 4) {
    const { c, d } = erfcMiddle
    let numerator = c[8] * y
    let denominator = y
    for (let i = 0; i < 7; i++) {
      numerator = (numerator + c[i]) * y
      denominator = (denominator + d[i]) * y
    }
    return (expMinusSquare(y) * (numerator + c[7])) / (denominator + d[7])
  }
  if (y >= 26.543) return 0
  const { p, q } = erfcLarge
  const z = 1 / (y * y)
  let numerator = p[5] * z
  let denominator = z
  for (let i = 0; i < 4; i++) {
    numerator = (numerator + p[i]) * z
    denominator = (denominator + q[i]) * z
  }
  const series = (z * (numerator + p[4])) / (denominator + q[4])
  return (expMinusSquare(y) * (oneOverSqrtPi - series)) / y
}

/** The complementary error function erfc(x) = 1 − erf(x). */
export const erfc = (x: number): number => {
  if (Number.isNaN(x)) return NaN
  const y = Math.abs(x)
  if (y <= 0.46875) {
    const { a, b } = erfSmall
    const z = y > 1.11e-16 ? y * y : 0
    let numerator = a[4] * z
    let denominator = z
    for (let i = 0; i < 3; i++) {
      numerator = (numerator + a[i]) * z
      denominator = (denominator + b[i]) * z
    }
    return 1 - (x * (numerator + a[3])) / (denominator + b[3])
  }
  const tail = erfcTail(y)
  return x < 0 ? 2 - tail : tail
}

/** Φ(x), the standard normal cumulative distribution function (scipy.special.ndtr). */
export const normalCdf = (x: number): number => 0.5 * erfc(-x / Math.SQRT2)

const normalDensity = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI)

/** Φ⁻¹(p) (scipy.special.ndtri): −∞ at 0, +∞ at 1, NaN outside [0, 1]. */
export const normalQuantile = (p: number): number => {
  if (!(p >= 0 && p <= 1)) return NaN
  if (p === 0) return -Infinity
  if (p === 1) return Infinity
  if (p === 0.5) return 0
  // Work in the lower tail, where Φ keeps its relative precision; the upper tail by symmetry.
  const lower = p < 0.5
  const q = lower ? p : 1 - p
  const t = Math.sqrt(-2 * Math.log(q))
  let x = -(t - (2.515517 + 0.802853 * t + 0.010328 * t * t) / (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t))
  for (let i = 0; i < 6; i++) {
    const density = normalDensity(x)
    if (density === 0) break
    // Halley's step on Φ(x) − q: Φ'' = −x·φ.
    const error = (normalCdf(x) - q) / density
    const step = error / (1 + 0.5 * x * error)
    x -= step
    if (Math.abs(step) <= 1e-16 * Math.abs(x)) break
  }
  return lower ? x : -x
}
