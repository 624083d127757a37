import type { ResamplingRandom } from "./resampling-random.ts"

/**
 * The arrangements resampling methods draw, over `n` units (noise draws, or training seeds):
 * bootstrap counts (how often each unit is drawn, with replacement), swaps of paired units, and
 * splits of pooled units into two groups. Permutation tests enumerate every arrangement when
 * there are at most as many as the declared resamples (an exact test), else draw that many.
 */

/** How many times each of `n` units is drawn in one bootstrap resample of size n. */
export const bootstrapCounts = (n: number, random: ResamplingRandom): Float64Array => {
  const counts = new Float64Array(n)
  for (let i = 0; i < n; i++) counts[random.below(n)]!++
  return counts
}

/** The leave-one-out weights of the jackknife: every unit once, except `left`. */
export const jackknifeCounts = (n: number, left: number): Float64Array => {
  const counts = new Float64Array(n).fill(1)
  counts[left] = 0
  return counts
}

export interface Arrangements {
  /** True when every arrangement is listed (the test is exact). */
  readonly exact: boolean
  readonly count: number
  /** The k-th arrangement: a 0/1 flag per unit. */
  readonly at: (k: number) => Uint8Array
}

/**
 * Paired swaps: flag 1 exchanges the unit's two members. Exact: the 2ⁿ flag patterns (bit i of k
 * is unit i's flag); otherwise `resamples` random patterns.
 */
export const pairedSwaps = (n: number, resamples: number, random: ResamplingRandom): Arrangements => {
  if (n < 31 && 2 ** n <= resamples) {
    return {
      exact: true,
      count: 2 ** n,
      at: (k) => Uint8Array.from({ length: n }, (_, i) => (Math.floor(k / 2 ** i) % 2))
    }
  }
  const drawn = Array.from({ length: resamples }, () => Uint8Array.from({ length: n }, () => (random.coin() ? 1 : 0)))
  return { exact: false, count: resamples, at: (k) => drawn[k]! }
}

const binomial = (n: number, k: number) => {
  let c = 1
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i
  return Math.round(c)
}

/** Every way to choose `k` of `n` units, in lexicographic order. */
const combinations = (n: number, k: number): ReadonlyArray<Uint8Array> => {
  const out: Array<Uint8Array> = []
  const chosen: Array<number> = []
  const visit = (start: number) => {
    if (chosen.length === k) {
      const flags = new Uint8Array(n)
      for (const i of chosen) flags[i] = 1
      out.push(flags)
      return
    }
    for (let i = start; i <= n - (k - chosen.length); i++) {
      chosen.push(i)
      visit(i + 1)
      chosen.pop()
    }
  }
  visit(0)
  return out
}

/**
 * Splits of n pooled units into a first group of `first` units (flag 1) and the rest: every split
 * when there are at most `resamples`, else `resamples` random ones (a uniform shuffle each).
 */
export const pooledSplits = (n: number, first: number, resamples: number, random: ResamplingRandom): Arrangements => {
  if (binomial(n, first) <= resamples) {
    const all = combinations(n, first)
    return { exact: true, count: all.length, at: (k) => all[k]! }
  }
  const drawn = Array.from({ length: resamples }, () => {
    const order = Array.from({ length: n }, (_, i) => i)
    for (let i = n - 1; i > 0; i--) {
      const j = random.below(i + 1)
      ;[order[i], order[j]] = [order[j]!, order[i]!]
    }
    const flags = new Uint8Array(n)
    for (let i = 0; i < first; i++) flags[order[i]!] = 1
    return flags
  })
  return { exact: false, count: resamples, at: (k) => drawn[k]! }
}
