import type { EvaluationEvidence, ImageEvidence } from "./evaluation-evidence.ts"

/**
 * The pooled generated CDF F against the reference CDF G, laid out once per space so that a
 * resample costs a pass over the generated values only. Between two consecutive generated values
 * F is constant while G steps through the reference values there ("pieces": from one breakpoint
 * of either set to the next, with G's value on it). For a constant F, a segment's share of
 * Wasserstein-1, Σ |F − γⱼ| ℓⱼ, follows from prefix sums of ℓ and γℓ and a binary search for F
 * among its γ (non-decreasing), and its largest gap |F − γ| is at one of its ends.
 */
export interface CdfLayout {
  /** Distinct generated values, ascending; value k's contributions are owners/masses[start[k] .. start[k + 1]). */
  readonly values: Float64Array
  readonly start: Int32Array
  readonly owners: Int32Array
  readonly masses: Float64Array
  /** Segment 0 lies before the first generated value, segment k + 1 from generated value k on: pieces[pieceStart[s] .. pieceStart[s + 1]). */
  readonly pieceStart: Int32Array
  /** G on each piece (already divided by the reference's total), and prefix sums of the pieces' lengths ℓ and of γℓ. */
  readonly gamma: Float64Array
  readonly prefixLength: Float64Array
  readonly prefixGammaLength: Float64Array
}

export const cdfLayout = (images: ReadonlyArray<ImageEvidence>, evidence: EvaluationEvidence): CdfLayout => {
  const reference = evidence.reference
  const generatedCount = images.reduce((n, i) => n + i.atoms.length, 0)
  const values = new Float64Array(generatedCount)
  const owners = new Int32Array(generatedCount)
  let at = 0
  images.forEach((image, owner) => {
    for (const v of image.atoms) {
      values[at] = v
      owners[at++] = owner
    }
  })
  const order = Uint32Array.from({ length: generatedCount }, (_, i) => i).sort((a, b) => values[a]! - values[b]!)
  const distinct: Array<number> = []
  const start: Array<number> = []
  const sortedOwners = new Int32Array(generatedCount)
  const masses = new Float64Array(generatedCount)
  order.forEach((i, k) => {
    if (distinct.length === 0 || values[i] !== distinct[distinct.length - 1]) {
      distinct.push(values[i]!)
      start.push(k)
    }
    sortedOwners[k] = owners[i]!
    masses[k] = images[owners[i]!]!.pixels / images[owners[i]!]!.atoms.length
  })
  start.push(generatedCount)
  // Breakpoints: every distinct value of either set; G after each, then pieces grouped by segment.
  const referenceMass = reference.pixels / reference.atoms.length
  const breakpoints: Array<number> = []
  const gammas: Array<number> = []
  let g = 0
  let r = 0
  let cumulative = 0
  const atoms = reference.atoms
  while (g < distinct.length || r < atoms.length) {
    const x = r === atoms.length || (g < distinct.length && distinct[g]! <= atoms[r]!) ? distinct[g]! : atoms[r]!
    while (g < distinct.length && distinct[g] === x) g++
    while (r < atoms.length && atoms[r] === x) {
      cumulative += referenceMass
      r++
    }
    breakpoints.push(x)
    gammas.push(cumulative / reference.pixels)
  }
  const pieces = breakpoints.length
  const prefixLength = new Float64Array(pieces + 1)
  const prefixGammaLength = new Float64Array(pieces + 1)
  for (let j = 0; j < pieces; j++) {
    const length = j + 1 < pieces ? breakpoints[j + 1]! - breakpoints[j]! : 0
    prefixLength[j + 1] = prefixLength[j]! + length
    prefixGammaLength[j + 1] = prefixGammaLength[j]! + gammas[j]! * length
  }
  const pieceStart = new Int32Array(distinct.length + 2)
  let j = 0
  for (let k = 0; k < distinct.length; k++) {
    while (breakpoints[j]! < distinct[k]!) j++
    pieceStart[k + 1] = j
  }
  pieceStart[distinct.length + 1] = pieces
  return {
    values: Float64Array.from(distinct),
    start: Int32Array.from(start),
    owners: sortedOwners,
    masses,
    pieceStart,
    gamma: Float64Array.from(gammas),
    prefixLength,
    prefixGammaLength
  }
}

/**
 * Wasserstein-1 (area between the CDFs) and KS (largest gap) of the weighted images' pooled values against the reference.
 * Values whose images all weigh 0 in this resample leave F unchanged, so their segment joins the one before: F is
 * constant over the joined pieces, and one search and one area cover them (a bootstrap resample leaves out about a
 * third of the noise draws, a permutation's side half of the pooled images).
 */
export const cdfDistances = (layout: CdfLayout, weights: Float64Array, generatedTotal: number, quantiles?: PooledQuantiles) => {
  const { gamma, masses, owners, pieceStart, prefixGammaLength, prefixLength, start, values } = layout
  let q = 0
  let area = 0
  let ks = 0
  let generated = 0
  /** Adds the area and the largest gap of F = f over pieces [first, end). */
  const constantOver = (first: number, end: number, f: number) => {
    if (first === end) return
    // The first piece with γ ≥ f; most segments lie wholly above or below F, which needs no search.
    let lo = first
    if (f > gamma[end - 1]!) lo = end
    else if (f > gamma[first]!) {
      lo = first + 1
      let hi = end - 1
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (gamma[mid]! < f) lo = mid + 1
        else hi = mid
      }
    }
    area += f * (prefixLength[lo]! - prefixLength[first]!) - (prefixGammaLength[lo]! - prefixGammaLength[first]!) +
      (prefixGammaLength[end]! - prefixGammaLength[lo]!) - f * (prefixLength[end]! - prefixLength[lo]!)
    const gap = Math.max(Math.abs(f - gamma[first]!), Math.abs(f - gamma[end - 1]!))
    if (gap > ks) ks = gap
  }
  let first = pieceStart[0]!
  let f = generated / generatedTotal
  for (let s = 1; s <= values.length; s++) {
    let moved = false
    for (let c = start[s - 1]!; c < start[s]!; c++) {
      const w = weights[owners[c]!]!
      if (w !== 0) {
        generated += w * masses[c]!
        moved = true
      }
    }
    if (!moved) continue
    constantOver(first, pieceStart[s]!, f)
    first = pieceStart[s]!
    f = generated / generatedTotal
    if (quantiles !== undefined) {
      const { into, ranks } = quantiles
      while (q < ranks.length && generated > ranks[q]!) into[q++] = values[s - 1]!
    }
  }
  constantOver(first, pieceStart[values.length + 1]!, f)
  if (quantiles !== undefined) quantiles.into.fill(values[values.length - 1]!, q)
  return { wasserstein: area, ks }
}

/**
 * Where cdfDistances also writes the pooled values at given ranks: into[q] is the first value whose cumulative
 * pixel count exceeds ranks[q] (ascending), the last value for the ranks it never exceeds.
 */
export interface PooledQuantiles {
  readonly ranks: Float64Array
  readonly into: Float64Array
}
