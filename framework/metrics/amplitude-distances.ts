import { Effect } from "effect"
import { normaliseMeanStd } from "../sar/normalisation.ts"
import { sortFloat32 } from "./float32-sort.ts"
import { checkedMoments, MetricInputError, type SampleImage, selectedValues } from "./metric-input.ts"

/**
 * Where two amplitude distributions are compared (DESIGN §6): normalised linear amplitude
 * v ∈ [0, 1], or decibels 20·log10(v) with v floored at `floorDb` (a zero has no decibel value;
 * the floor is part of the declared domain).
 */
export type DistanceDomain =
  | { readonly kind: "amplitude" }
  | { readonly kind: "db"; readonly floorDb: number }

/**
 * The selected pixels of one linear-amplitude image after the per-image normalisation
 * v = clip(A / (mean + 3·std), 0, 1) (float32, as the seed study stores them): what a set pools.
 * mean and std are numpy's, as in the texture chain (`checkedMoments`).
 */
export const normalisedSamples = (amplitude: SampleImage): Effect.Effect<Float32Array, MetricInputError> =>
  Effect.map(checkedMoments(amplitude), ({ count, mean, std }) => {
    const v = normaliseMeanStd(amplitude.data, { statistics: { mean, std }, ...(amplitude.mask ? { valid: amplitude.mask } : {}) })
    return selectedValues({ ...amplitude, data: v }, count)
  })

/** Equal-width bins over [lo, hi], as numpy.histogram(bins, range): the last bin includes hi. */
export interface Binning {
  readonly bins: number
  readonly lo: number
  readonly hi: number
}

/** The binning that covers a domain: [0, 1] for amplitude, [floorDb, 0] for decibels. */
export const domainBinning = (domain: DistanceDomain, bins: number): Binning =>
  domain.kind === "amplitude" ? { bins, lo: 0, hi: 1 } : { bins, lo: domain.floorDb, hi: 0 }

/** Maps normalised amplitude samples into the domain (a copy for decibels; the same array otherwise). */
export const toDomain = (samples: Float32Array, domain: DistanceDomain): Float32Array => {
  if (domain.kind === "amplitude") return samples
  const floor = Math.pow(10, domain.floorDb / 20)
  const out = new Float32Array(samples.length)
  for (let i = 0; i < samples.length; i++) out[i] = 20 * Math.log10(Math.max(samples[i]!, floor))
  return out
}

/**
 * Distances between two sample sets. Wasserstein-1 (area between the empirical CDFs) and
 * Kolmogorov–Smirnov (largest CDF gap) use the exact samples, as scipy.stats does. The others use
 * the histograms on the declared binning, normalised to probabilities p, q:
 * KL(p‖q) in nats after adding `klPseudoCount` to every bin of both histograms (scipy.stats.entropy
 * of the smoothed histograms); Jensen–Shannon divergence in nats, unsmoothed (the square of
 * scipy.spatial.distance.jensenshannon); Hellinger sqrt(½ Σ(√p − √q)²) ∈ [0, 1]; Bhattacharyya
 * distance −ln Σ √(p q) (Infinity for disjoint histograms).
 */
export interface AmplitudeDistances {
  readonly wasserstein: number
  readonly ks: number
  readonly kl: number
  readonly js: number
  readonly hellinger: number
  readonly bhattacharyya: number
}

/** A named sample set; the name is what errors print. */
export interface SampleSet {
  readonly name: string
  readonly samples: Float32Array
}

/** numpy.linspace(lo, hi, bins + 1): k·step + lo, with the last edge set to hi. */
const binEdges = ({ bins, lo, hi }: Binning): Float64Array => {
  const edges = new Float64Array(bins + 1)
  const step = (hi - lo) / bins
  for (let k = 0; k < bins; k++) edges[k] = k * step + lo
  edges[bins] = hi
  return edges
}

/** Counts per bin of sorted samples: bin k holds edges[k] ≤ x < edges[k+1], the last bin also x = hi. */
export const histogramOfSorted = (sorted: Float32Array, binning: Binning): Float64Array => {
  const edges = binEdges(binning)
  const counts = new Float64Array(binning.bins)
  let i = 0
  while (i < sorted.length && sorted[i]! < edges[0]!) i++
  for (let k = 0; k < binning.bins; k++) {
    const start = i
    if (k === binning.bins - 1) {
      while (i < sorted.length && sorted[i]! <= edges[k + 1]!) i++
    } else {
      while (i < sorted.length && sorted[i]! < edges[k + 1]!) i++
    }
    counts[k] = i - start
  }
  return counts
}

/** Wasserstein-1 and KS from two sorted sample arrays, walking their merged order once. */
const cdfDistances = (a: Float32Array, b: Float32Array) => {
  const na = a.length
  const nb = b.length
  let i = 0
  let j = 0
  let area = 0
  let ks = 0
  let x = Math.min(a[0]!, b[0]!)
  while (i < na || j < nb) {
    while (i < na && a[i] === x) i++
    while (j < nb && b[j] === x) j++
    const gap = Math.abs(i / na - j / nb)
    if (gap > ks) ks = gap
    if (i === na && j === nb) break
    const next = i === na ? b[j]! : j === nb ? a[i]! : Math.min(a[i]!, b[j]!)
    area += gap * (next - x)
    x = next
  }
  return { wasserstein: area, ks }
}

const sum = (values: Float64Array) => {
  let s = 0
  for (let i = 0; i < values.length; i++) s += values[i]!
  return s
}

/** x·ln(x/y) with scipy.special.rel_entr's conventions at zero. */
const relativeEntropy = (x: number, y: number) => (x > 0 && y > 0 ? x * Math.log(x / y) : x === 0 && y >= 0 ? 0 : Infinity)

/** KL, JS, Hellinger and Bhattacharyya of two histograms on the same bins (see AmplitudeDistances). */
export const histogramDistances = (countsA: Float64Array, countsB: Float64Array, totalA: number, totalB: number, pseudoCount: number) => {
  const bins = countsA.length
  const smoothedA = totalA + pseudoCount * bins
  const smoothedB = totalB + pseudoCount * bins
  let kl = 0
  let js = 0
  let hellinger = 0
  let coefficient = 0
  for (let k = 0; k < bins; k++) {
    const p = countsA[k]! / totalA
    const q = countsB[k]! / totalB
    kl += relativeEntropy((countsA[k]! + pseudoCount) / smoothedA, (countsB[k]! + pseudoCount) / smoothedB)
    const m = 0.5 * (p + q)
    js += relativeEntropy(p, m) + relativeEntropy(q, m)
    const d = Math.sqrt(p) - Math.sqrt(q)
    hellinger += d * d
    coefficient += Math.sqrt(p * q)
  }
  return {
    kl,
    js: 0.5 * js,
    hellinger: Math.sqrt(0.5 * hellinger),
    // Σ√(pq) can exceed 1 by rounding for identical histograms; the distance is then 0.
    bhattacharyya: coefficient >= 1 ? 0 : -Math.log(coefficient)
  }
}

const checkSet = (set: SampleSet, binning: Binning): Effect.Effect<void, MetricInputError> => {
  const fail = (reason: string) => Effect.fail(new MetricInputError({ input: set.name, reason }))
  if (set.samples.length === 0) return fail("has no samples")
  // A NaN or infinity makes the float64 sum of float32 samples non-finite; only then search.
  let sum = 0
  for (let i = 0; i < set.samples.length; i++) sum += set.samples[i]!
  if (!Number.isFinite(sum)) {
    const i = set.samples.findIndex((v) => !Number.isFinite(v))
    return fail(`sample ${i} is ${set.samples[i]}, not a finite number`)
  }
  if (!(Number.isInteger(binning.bins) && binning.bins > 0)) return fail(`bins must be a positive integer, got ${binning.bins}`)
  if (!(Number.isFinite(binning.lo) && Number.isFinite(binning.hi) && binning.lo < binning.hi)) {
    return fail(`the binning range [${binning.lo}, ${binning.hi}] must be finite with lo < hi`)
  }
  return Effect.void
}

export const amplitudeDistances = (
  a: SampleSet,
  b: SampleSet,
  binning: Binning,
  klPseudoCount: number
): Effect.Effect<AmplitudeDistances, MetricInputError> =>
  Effect.gen(function*() {
    yield* checkSet(a, binning)
    yield* checkSet(b, binning)
    if (!(klPseudoCount >= 0)) {
      return yield* new MetricInputError({ input: a.name, reason: `klPseudoCount must be ≥ 0, got ${klPseudoCount}` })
    }
    const sortedA = sortFloat32(a.samples)
    const sortedB = sortFloat32(b.samples)
    const countsA = histogramOfSorted(sortedA, binning)
    const countsB = histogramOfSorted(sortedB, binning)
    const totalA = sum(countsA)
    const totalB = sum(countsB)
    for (const [set, total] of [[a, totalA], [b, totalB]] as const) {
      if (total === 0) {
        return yield* new MetricInputError({
          input: set.name,
          reason: `no sample falls in the binning range [${binning.lo}, ${binning.hi}]`
        })
      }
    }
    return { ...cdfDistances(sortedA, sortedB), ...histogramDistances(countsA, countsB, totalA, totalB, klPseudoCount) }
  })
