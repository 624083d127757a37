/**
 * Digamma ψ, trigamma ψ1 and tetragamma ψ2 on the whole real line, with scipy.special's values
 * at the poles (digamma(±0) = ∓∞, digamma at negative integers NaN, ψ1 = +∞ and ψ2 = −∞ at
 * non-positive integers).
 *
 * Method: for x ≥ 0 the recurrences ψ(x) = ψ(x+1) − 1/x, ψ1(x) = ψ1(x+1) + 1/x²,
 * ψ2(x) = ψ2(x+1) − 2/x³ move the argument to x ≥ 10, where the asymptotic (Bernoulli) series
 * is accurate to double precision; negative arguments use the reflection formulas.
 */

const SHIFT_TO = 10

const isNonPositiveInteger = (x: number) => x <= 0 && Number.isInteger(x)

export const digamma = (x: number): number => {
  if (Number.isNaN(x)) return NaN
  if (x === 0) return Object.is(x, -0) ? Infinity : -Infinity
  if (isNonPositiveInteger(x)) return NaN
  if (x === Infinity) return Infinity
  if (x < 0) return digamma(1 - x) - Math.PI / Math.tan(Math.PI * x)
  let shift = 0
  while (x < SHIFT_TO) {
    shift += 1 / x
    x += 1
  }
  const r = 1 / (x * x)
  const series = r * (1 / 12 - r * (1 / 120 - r * (1 / 252 - r * (1 / 240 - r * (1 / 132 - r * (691 / 32760 - r / 12))))))
  return Math.log(x) - 0.5 / x - series - shift
}

export const trigamma = (x: number): number => {
  if (Number.isNaN(x)) return NaN
  if (isNonPositiveInteger(x)) return Infinity
  if (x === Infinity) return 0
  if (x < 0) {
    const s = Math.sin(Math.PI * x)
    return (Math.PI * Math.PI) / (s * s) - trigamma(1 - x)
  }
  let shift = 0
  while (x < SHIFT_TO) {
    shift += 1 / (x * x)
    x += 1
  }
  const r = 1 / (x * x)
  const series = r * (1 / 6 - r * (1 / 30 - r * (1 / 42 - r * (1 / 30 - r * (5 / 66 - r * (691 / 2730 - r * (7 / 6)))))))
  return shift + (1 + 0.5 / x + series) / x
}

export const tetragamma = (x: number): number => {
  if (Number.isNaN(x)) return NaN
  if (isNonPositiveInteger(x)) return -Infinity
  if (x === Infinity) return 0
  if (x < 0) {
    const s = Math.sin(Math.PI * x)
    return tetragamma(1 - x) - (2 * Math.PI ** 3 * Math.cos(Math.PI * x)) / (s * s * s)
  }
  let shift = 0
  while (x < SHIFT_TO) {
    shift += 2 / (x * x * x)
    x += 1
  }
  const r = 1 / (x * x)
  const series = r * (0.5 - r * (1 / 6 - r * (1 / 6 - r * (3 / 10 - r * (5 / 6 - r * (691 / 210 - r * (35 / 2)))))))
  return -shift - (1 + 1 / x + series) / (x * x)
}

/**
 * The x > 0 with ψ1(x) = y, for y > 0 (ψ1 falls from +∞ to 0 on (0, ∞)). Newton's method on a
 * convex decreasing function converges monotonically once it is left of the root; a step that
 * would leave (0, ∞) halves x instead.
 */
export const inverseTrigamma = (y: number): number => {
  if (!(y > 0)) return y === 0 ? Infinity : NaN
  if (y === Infinity) return 0
  let x = (1 + Math.sqrt(1 + 2 * y)) / (2 * y)
  for (let i = 0; i < 200; i++) {
    const step = (trigamma(x) - y) / tetragamma(x)
    const next = x - step
    const bounded = next > 0 ? next : x / 2
    if (Math.abs(bounded - x) <= 1e-15 * x) return bounded
    x = bounded
  }
  return x
}
