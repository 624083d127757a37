import { Effect } from "effect"
import { bcaInterval, bootstrapStandardError } from "./bootstrap-interval.ts"
import { type EstimateInterval, noiseDraws, progressEvery, type UncertaintySettings } from "./evaluation-intervals.ts"
import { permutationPValue } from "./permutation-p-value.ts"
import { bootstrapCounts, jackknifeCounts, pairedSwaps } from "./resampling-plans.ts"
import { ResamplingRandom, wordOf } from "./resampling-random.ts"

/**
 * Intervals on the paired metrics of conditioned experiments (each sample against its scene's truth):
 * the mean over the pairs, with the interval method of every other estimate (evaluation-intervals.ts) —
 * a BCa bootstrap over noise draws. The samples of one seed share their starting noise across scenes, as
 * images of one seed share it across prompts, so a resample draws noise draws with replacement and takes
 * all their pairs; the scenes are strata (the declaration chose them), never resampled.
 * Two conditioned experiments are compared pair by pair — same scene, same seed — by a paired bootstrap
 * of the mean difference over their shared noise draws and a paired permutation test (swapping the two
 * experiments' pairs of a draw), as strategy-comparison.ts compares strategies that share noise.
 */

/** One pair's place in the resampling: its scene, seed and which sample of that scene and seed it is. */
export interface PairUnit {
  readonly scene: number
  readonly seed: number
  readonly sample: number
}

/** Which sample of its scene and seed each pair is, in order (several when generate asks for several per condition). */
export const pairUnits = (pairs: ReadonlyArray<{ readonly scene: number; readonly seed: number }>): ReadonlyArray<PairUnit> => {
  const seen = new Map<string, number>()
  return pairs.map(({ scene, seed }) => {
    const key = `${scene}/${seed}`
    const sample = seen.get(key) ?? 0
    seen.set(key, sample + 1)
    return { scene, seed, sample }
  })
}

const weightedMean = (values: Float64Array, weights: Float64Array): number => {
  let sum = 0
  let total = 0
  for (let i = 0; i < values.length; i++) {
    sum += weights[i]! * values[i]!
    total += weights[i]!
  }
  return sum / total
}

/** Pair weights from per-draw counts. */
const weightsOf = (draws: ReadonlyArray<ReadonlyArray<number>>, counts: Float64Array, into: Float64Array) => {
  draws.forEach((pairs, d) => {
    for (const i of pairs) into[i] = counts[d]!
  })
  return into
}

const undefinedInterval = (value: number): EstimateInterval => ({ value, low: NaN, high: NaN, standardError: NaN, method: "none" })

/**
 * The mean of each named per-pair value, with its interval. `word` names what is resampled, so two
 * experiments (or two metrics sets) draw different resamples from the same declared seed.
 */
export const pairedMeanIntervals = <K extends string>(
  units: ReadonlyArray<PairUnit>,
  values: Readonly<Partial<Record<K, ReadonlyArray<number>>>>,
  settings: UncertaintySettings,
  word: string
): Readonly<Partial<Record<K, EstimateInterval>>> => {
  const draws = noiseDraws(units)
  const random = new ResamplingRandom(settings.seed, wordOf(word))
  const names = (Object.keys(values) as Array<K>).filter((name) => values[name] !== undefined)
  const columns = names.map((name) => Float64Array.from(values[name]!))
  const weights = new Float64Array(units.length)
  const resampled = names.map(() => new Float64Array(settings.resamples))
  for (let r = 0; r < settings.resamples; r++) {
    weightsOf(draws, bootstrapCounts(draws.length, random), weights)
    columns.forEach((column, m) => (resampled[m]![r] = weightedMean(column, weights)))
  }
  const jackknife = names.map(() => new Float64Array(draws.length))
  for (let left = 0; left < draws.length; left++) {
    weightsOf(draws, jackknifeCounts(draws.length, left), weights)
    columns.forEach((column, m) => (jackknife[m]![left] = weightedMean(column, weights)))
  }
  const out: Partial<Record<K, EstimateInterval>> = {}
  names.forEach((name, m) => {
    const value = weightedMean(columns[m]!, weights.fill(1))
    if (!Number.isFinite(value) || draws.length < 2) return void (out[name] = undefinedInterval(value))
    const interval = bcaInterval(value, resampled[m]!, [jackknife[m]!], settings.level)
    out[name] = { value, low: interval.low, high: interval.high, standardError: bootstrapStandardError(resampled[m]!), method: interval.method }
  })
  return out
}

/** One metric's difference between two conditioned experiments over their matched pairs. */
export interface PairedDifference {
  /** Mean of a's pairs minus mean of b's, over the matched pairs. */
  readonly difference: number
  readonly low: number
  readonly high: number
  /** Two-sided p-value of the paired permutation test. */
  readonly p: number
  readonly method: "bca" | "percentile" | "none"
}

export interface PairedComparison<K extends string> {
  readonly a: string
  readonly b: string
  /** Pairs present in both (same scene, seed and sample). */
  readonly matched: number
  /** Noise draws resampled. */
  readonly draws: number
  /** True when the permutation test enumerated every swap of the draws. */
  readonly exact: boolean
  readonly differences: Readonly<Record<K, PairedDifference>>
}

/** a's pairs against b's, matched by scene, seed and sample; pairs only one of them has are left out. */
export const comparePairedMetrics = <K extends string>(
  a: { readonly name: string; readonly units: ReadonlyArray<PairUnit>; readonly values: Readonly<Record<K, ReadonlyArray<number>>> },
  b: { readonly name: string; readonly units: ReadonlyArray<PairUnit>; readonly values: Readonly<Record<K, ReadonlyArray<number>>> },
  settings: UncertaintySettings,
  progress: (done: number, total: number) => Effect.Effect<void> = () => Effect.yieldNow()
): Effect.Effect<PairedComparison<K>> =>
  Effect.gen(function*() {
    const keyOf = (u: PairUnit) => `${u.scene}/${u.seed}/${u.sample}`
    const inB = new Map(b.units.map((u, i) => [keyOf(u), i]))
    const matches = a.units.flatMap((u, i) => {
      const j = inB.get(keyOf(u))
      return j === undefined ? [] : [{ unit: u, i, j }]
    })
    const units = matches.map((m) => m.unit)
    const draws = noiseDraws(units)
    const names = (Object.keys(a.values) as Array<K>).filter((name) => name in b.values)
    const differences = names.map((name) => Float64Array.from(matches, (m) => a.values[name][m.i]! - b.values[name][m.j]!))
    const random = new ResamplingRandom(settings.seed, wordOf(`paired/${a.name}/${b.name}`))
    const weights = new Float64Array(units.length)
    // Swapping a draw's pairs between the experiments negates its differences.
    const swaps = pairedSwaps(draws.length, settings.resamples, random)
    const nulls = names.map(() => new Float64Array(swaps.count))
    const signs = new Float64Array(units.length)
    for (let k = 0; k < swaps.count; k++) {
      const flags = swaps.at(k)
      draws.forEach((pairs, d) => {
        for (const i of pairs) signs[i] = flags[d] ? -1 : 1
      })
      differences.forEach((column, m) => (nulls[m]![k] = weightedMean(column.map((v, i) => v * signs[i]!), weights.fill(1))))
    }
    const resampled = names.map(() => new Float64Array(settings.resamples))
    for (let r = 0; r < settings.resamples; r++) {
      weightsOf(draws, bootstrapCounts(draws.length, random), weights)
      differences.forEach((column, m) => (resampled[m]![r] = weightedMean(column, weights)))
      if ((r + 1) % progressEvery === 0) yield* progress(r + 1, settings.resamples)
    }
    const jackknife = names.map(() => new Float64Array(draws.length))
    for (let left = 0; left < draws.length; left++) {
      weightsOf(draws, jackknifeCounts(draws.length, left), weights)
      differences.forEach((column, m) => (jackknife[m]![left] = weightedMean(column, weights)))
    }
    const out = {} as Record<K, PairedDifference>
    names.forEach((name, m) => {
      const difference = weightedMean(differences[m]!, weights.fill(1))
      const p = permutationPValue(difference, nulls[m]!, swaps.exact)
      if (!Number.isFinite(difference) || draws.length < 2) return void (out[name] = { difference, low: NaN, high: NaN, p, method: "none" })
      const interval = bcaInterval(difference, resampled[m]!, [jackknife[m]!], settings.level)
      out[name] = { difference, low: interval.low, high: interval.high, p, method: interval.method }
    })
    return { a: a.name, b: b.name, matched: units.length, draws: draws.length, exact: swaps.exact, differences: out }
  })
