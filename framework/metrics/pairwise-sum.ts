/**
 * numpy's pairwise summation (`pairwise_sum` in numpy/_core/src/umath/loops_utils.h.src): blocks
 * of at most 128 values summed with eight interleaved accumulators, halves (cut at a multiple of
 * eight) added recursively. `numpy.sum`, `mean`, `var` and `std` of a contiguous float64 array
 * use exactly this order, so sums taken this way equal numpy's to the last bit; a normalisation
 * that divides by mean + 3·std then puts every pixel in the same grey level as numpy does.
 */

const BLOCK = 128

/** Σ values[start … start + n − 1] in numpy's order. */
export const pairwiseSum = (values: Float32Array | Float64Array, start: number, n: number): number => {
  if (n < 8) {
    // −0 as the start keeps a sum of −0 values −0, as numpy does.
    let sum = -0
    for (let i = 0; i < n; i++) sum += values[start + i]!
    return sum
  }
  if (n <= BLOCK) {
    let r0 = values[start]!
    let r1 = values[start + 1]!
    let r2 = values[start + 2]!
    let r3 = values[start + 3]!
    let r4 = values[start + 4]!
    let r5 = values[start + 5]!
    let r6 = values[start + 6]!
    let r7 = values[start + 7]!
    const whole = n - (n % 8)
    let i = 8
    for (; i < whole; i += 8) {
      const p = start + i
      r0 += values[p]!
      r1 += values[p + 1]!
      r2 += values[p + 2]!
      r3 += values[p + 3]!
      r4 += values[p + 4]!
      r5 += values[p + 5]!
      r6 += values[p + 6]!
      r7 += values[p + 7]!
    }
    let sum = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for (; i < n; i++) sum += values[start + i]!
    return sum
  }
  const half = Math.floor(n / 2)
  const left = half - (half % 8)
  return pairwiseSum(values, start, left) + pairwiseSum(values, start + left, n - left)
}

/** Σ (values[i] − centre)² over start … start + n − 1 in numpy's order (`var` sums the squares so). */
export const pairwiseSquaredDeviations = (values: Float32Array | Float64Array, start: number, n: number, centre: number): number => {
  if (n < 8) {
    let sum = -0
    for (let i = 0; i < n; i++) {
      const d = values[start + i]! - centre
      sum += d * d
    }
    return sum
  }
  if (n <= BLOCK) {
    // Written out (no helper per value): this loop is the texture chain's second pass.
    let d = values[start]! - centre
    let r0 = d * d
    d = values[start + 1]! - centre
    let r1 = d * d
    d = values[start + 2]! - centre
    let r2 = d * d
    d = values[start + 3]! - centre
    let r3 = d * d
    d = values[start + 4]! - centre
    let r4 = d * d
    d = values[start + 5]! - centre
    let r5 = d * d
    d = values[start + 6]! - centre
    let r6 = d * d
    d = values[start + 7]! - centre
    let r7 = d * d
    const whole = n - (n % 8)
    let i = 8
    for (; i < whole; i += 8) {
      const p = start + i
      const d0 = values[p]! - centre
      const d1 = values[p + 1]! - centre
      const d2 = values[p + 2]! - centre
      const d3 = values[p + 3]! - centre
      const d4 = values[p + 4]! - centre
      const d5 = values[p + 5]! - centre
      const d6 = values[p + 6]! - centre
      const d7 = values[p + 7]! - centre
      r0 += d0 * d0
      r1 += d1 * d1
      r2 += d2 * d2
      r3 += d3 * d3
      r4 += d4 * d4
      r5 += d5 * d5
      r6 += d6 * d6
      r7 += d7 * d7
    }
    let sum = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for (; i < n; i++) {
      d = values[start + i]! - centre
      sum += d * d
    }
    return sum
  }
  const half = Math.floor(n / 2)
  const left = half - (half % 8)
  return pairwiseSquaredDeviations(values, start, left, centre) + pairwiseSquaredDeviations(values, start + left, n - left, centre)
}
