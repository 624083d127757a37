/**
 * The two-sided p-value of a permutation test from its null distribution, as
 * scipy.stats.permutation_test computes it: twice the smaller tail, each tail counting the null
 * values at least as extreme as the observed one (within a relative 100·ε, so rounding cannot
 * flip a tie). A randomised test adds the observed arrangement to both counts (Phipson & Smyth
 * 2010), so p is never 0; an exact test (every arrangement enumerated) holds it already.
 */
export const permutationPValue = (observed: number, nullDistribution: Float64Array, exact: boolean): number => {
  if (Number.isNaN(observed)) return NaN
  const gamma = Math.abs(observed * 100 * Number.EPSILON)
  const adjustment = exact ? 0 : 1
  let less = 0
  let greater = 0
  for (const v of nullDistribution) {
    if (v <= observed + gamma) less++
    if (v >= observed - gamma) greater++
  }
  const n = nullDistribution.length + adjustment
  return Math.min(1, 2 * Math.min((less + adjustment) / n, (greater + adjustment) / n))
}

/** The smallest p-value a test with this null distribution can give: what its resolution allows. */
export const smallestPValue = (arrangements: number, exact: boolean): number => Math.min(1, 2 / (arrangements + (exact ? 0 : 1)))
