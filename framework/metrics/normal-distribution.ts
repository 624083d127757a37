/**
 * The standard normal distribution: Φ (scipy.special.ndtr) and Φ⁻¹ (scipy.special.ndtri), to
 * double precision, for bootstrap intervals (BCa) and z scores.
 *
 * Φ(x) = ½ erfc(−x/√2), with erfc from W. J. Cody's rational Chebyshev approximations (Math.
 * Comp. 1969; netlib specfun CALERF), which keep their relative accuracy far into the tails. Φ⁻¹
 * starts from Abramowitz & Stegun 26.2.23 (error < 4.5e-4) and polishes with Halley steps on Φ.
 * The coefficients are Cody's, written as the doubles they round to.
 */

const erfSmall = {
  a: [3.1611237438705655, 113.86415415105016, 377.485237685302, 3209.3775891384694, 0.18577770618460315],
  b: [23.601290952344122, 244.02463793444417, 1282.6165260773723, 2844.236833439171]
}
const erfcMiddle = {
  c: [
    0.5641884969886701,
    8.883149794388377,
    66.11919063714163,
    298.6351381974001,
    881.952221241769,
    1712.0476126340707,
    2051.0783778260716,
    1230.3393547979972,
    2.1531153547440383e-8
  ],
  d: [
    15.744926110709835,
    117.6939508913125,
    537.1811018620099,
    1621.3895745666903,
    3290.7992357334597,
    4362.619090143247,
    3439.3676741437216,
    1230.3393548037495
  ]
}
const erfcLarge = {
  p: [0.30532663496123236, 0.36034489994980445, 0.12578172611122926, 0.016083785148742275, 0.0006587491615298378, 0.016315387137302097],
  q: [2.568520192289822, 1.8729528499234604, 0.5279051029514285, 0.06051834131244132, 0.0023352049762686918]
}
const oneOverSqrtPi = 0.5641895835477563

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
    let numerator = c[8]! * y
    let denominator = y
    for (let i = 0; i < 7; i++) {
      numerator = (numerator + c[i]!) * y
      denominator = (denominator + d[i]!) * y
    }
    return (expMinusSquare(y) * (numerator + c[7]!)) / (denominator + d[7]!)
  }
  if (y >= 26.543) return 0
  const { p, q } = erfcLarge
  const z = 1 / (y * y)
  let numerator = p[5]! * z
  let denominator = z
  for (let i = 0; i < 4; i++) {
    numerator = (numerator + p[i]!) * z
    denominator = (denominator + q[i]!) * z
  }
  const series = (z * (numerator + p[4]!)) / (denominator + q[4]!)
  return (expMinusSquare(y) * (oneOverSqrtPi - series)) / y
}

/** The complementary error function erfc(x) = 1 − erf(x). */
export const erfc = (x: number): number => {
  if (Number.isNaN(x)) return NaN
  const y = Math.abs(x)
  if (y <= 0.46875) {
    const { a, b } = erfSmall
    const z = y > 1.11e-16 ? y * y : 0
    let numerator = a[4]! * z
    let denominator = z
    for (let i = 0; i < 3; i++) {
      numerator = (numerator + a[i]!) * z
      denominator = (denominator + b[i]!) * z
    }
    return 1 - (x * (numerator + a[3]!)) / (denominator + b[3]!)
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
