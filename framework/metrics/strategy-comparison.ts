import { Effect } from "effect"
import { bcaInterval } from "./bootstrap-interval.ts"
import type { EvaluationEvidence, ImageEvidence } from "./evaluation-evidence.ts"
import { comparedValue, type EstimateInterval, noiseDraws, progressEvery, type ResamplingProgress, type UncertaintySettings } from "./evaluation-intervals.ts"
import { promptFollowingEstimates } from "./metric-catalog.ts"
import { permutationPValue, smallestPValue } from "./permutation-p-value.ts"
import { type EstimateDefinition, estimateDefinitions, EstimateSpace, incomparableEvidence } from "./resampled-estimates.ts"
import { type Arrangements, bootstrapCounts, jackknifeCounts, pairedSwaps, pooledSplits } from "./resampling-plans.ts"
import { ResamplingRandom, wordOf } from "./resampling-random.ts"
import { differenceTest, type MeanEvidence, sampleMean } from "./t-tests.ts"

/**
 * The difference between two strategies on every estimate, with an interval and a two-sided
 * p-value. The test depends on what was replicated:
 *
 * - One training run each (K = 1), samples that pair up (the same prompt positions, sampling
 *   seeds and sample indices): a paired permutation test over noise draws — the two strategies'
 *   images of a noise draw are swapped as a whole, since images sharing their starting noise are
 *   not independent — and a paired bootstrap of the difference over noise draws (BCa).
 * - One run each, samples that do not pair up: an unpaired permutation test (noise draws of both
 *   pooled and split again) and independent bootstraps of each side. A permutation test rather
 *   than a bootstrap test: it is exact under the null hypothesis that the two strategies'
 *   noise draws are exchangeable, whatever the metric, where a bootstrap test is only
 *   asymptotically right and errs towards significance with few draws.
 * - Several training seeds on either side (K ≥ 2): the training seed is the unit. Welch's test on
 *   the replicates' values; a side with a single run enters with its bootstrap variance (known,
 *   infinite degrees of freedom), e.g. a baseline, whose replicates would all be the same model.
 *
 * "closer" estimates compare the distance to the real value. Permutations are enumerated when
 * there are at most `resamples` of them (an exact test), else drawn, seeded by the declaration.
 */

export interface ReplicateEvidence {
  readonly estimates: Readonly<Record<string, EstimateInterval>>
  readonly evidence: EvaluationEvidence
}

export interface StrategyEvidence {
  readonly name: string
  readonly replicates: ReadonlyArray<ReplicateEvidence>
}

export type ComparisonTest = "paired permutation" | "unpaired permutation" | "welch"

export interface EstimateDifference {
  /** a − b of the compared quantity (for "closer" estimates, of the distances to the real value). */
  readonly difference: number
  readonly low: number
  readonly high: number
  readonly p: number
}

export interface PairComparison {
  readonly test: ComparisonTest
  /** Noise draws (paired: pairs of draws; unpaired: both sides' draws) or training runs of each side. */
  readonly units: readonly [number, number]
  /** For permutation tests: how many arrangements, whether that is all of them, the smallest p they allow. */
  readonly permutations?: { readonly count: number; readonly exact: boolean; readonly smallestP: number }
  readonly definitions: ReadonlyArray<EstimateDefinition>
  readonly differences: Readonly<Record<string, EstimateDifference>>
}

/** Why two strategies cannot be compared, when they cannot. */
export class Incomparable {
  readonly _tag = "Incomparable"
  constructor(readonly reason: string) {}
}

const pairKey = (image: ImageEvidence) => `${image.promptIndex}/${image.split}/${image.seed}/${image.sample}`

/** B's image index for each of A's images when the two sets pair up one to one, else undefined. */
const pairing = (a: ReadonlyArray<ImageEvidence>, b: ReadonlyArray<ImageEvidence>): ReadonlyArray<number> | undefined => {
  if (a.length !== b.length) return undefined
  const inB = new Map<string, number>()
  b.forEach((image, j) => inB.set(pairKey(image), j))
  if (inB.size !== b.length) return undefined
  const partner = a.map((image) => inB.get(pairKey(image)))
  return partner.every((j) => j !== undefined) && new Set(partner).size === a.length ? (partner as Array<number>) : undefined
}

const promptFollowingIds: ReadonlySet<string> = new Set(promptFollowingEstimates.map((e) => e.metric.id))

/**
 * The estimates both evaluations have; prompt following only where both measured it among the
 * same number of prompts with the same k (a top-3 among 8 prompts is no top-3 among 4).
 */
const commonDefinitions = (a: EvaluationEvidence, b: EvaluationEvidence) => {
  const theirs = estimateDefinitions(b)
  const sameRetrieval = a.retrieval?.prompts === b.retrieval?.prompts && a.retrieval?.k === b.retrieval?.k
  return estimateDefinitions(a).filter((d) => theirs.some((e) => e.id === d.id) && (sameRetrieval || !promptFollowingIds.has(d.id)))
}

/** Each estimate's a − b on the compared scale, A* estimated in `spaceA` and B* in `spaceB`. */
const differencesOf = (
  definitions: ReadonlyArray<EstimateDefinition>,
  [spaceA, weightsA]: readonly [EstimateSpace, Float64Array],
  [spaceB, weightsB]: readonly [EstimateSpace, Float64Array]
) => {
  const a = spaceA.estimates(weightsA)
  const b = spaceB.estimates(weightsB)
  return definitions.map((d) => comparedValue(d, a[spaceA.positionOf.get(d.id)!]!) - comparedValue(d, b[spaceB.positionOf.get(d.id)!]!))
}

interface Design {
  readonly test: "paired permutation" | "unpaired permutation"
  readonly units: readonly [number, number]
  /** Weights of A* and B* for a permutation arrangement. */
  readonly arrangement: (flags: Uint8Array, into: readonly [Float64Array, Float64Array]) => void
  readonly arrangements: Arrangements
  /** Weights of A* and B* for a bootstrap resample. */
  readonly resample: (random: ResamplingRandom, into: readonly [Float64Array, Float64Array]) => void
  /** Jackknife samples: per sample, the weights leaving out each of its units. */
  readonly jackknife: ReadonlyArray<ReadonlyArray<(into: readonly [Float64Array, Float64Array]) => void>>
}

const setUnits = (into: Float64Array, images: ReadonlyArray<number>, weight: number) => {
  for (const i of images) into[i] = weight
}

/** Paired: unit u is A's noise draw u and B's images of the same prompts and noise. */
const pairedDesign = (a: ReadonlyArray<ImageEvidence>, partner: ReadonlyArray<number>, settings: UncertaintySettings, random: ResamplingRandom): Design => {
  const offset = a.length
  const drawsA = noiseDraws(a)
  const drawsB = drawsA.map((images) => images.map((i) => offset + partner[i]!))
  const n = drawsA.length
  /** The same count on A's draw u and on its partner. */
  const matched = (counts: Float64Array, [wA, wB]: readonly [Float64Array, Float64Array]) => {
    wA.fill(0)
    wB.fill(0)
    for (let u = 0; u < n; u++) {
      setUnits(wA, drawsA[u]!, counts[u]!)
      setUnits(wB, drawsB[u]!, counts[u]!)
    }
  }
  return {
    test: "paired permutation",
    units: [n, n],
    arrangements: pairedSwaps(n, settings.resamples, random),
    arrangement: (flags, [wA, wB]) => {
      for (let u = 0; u < n; u++) {
        setUnits(wA, flags[u] ? drawsB[u]! : drawsA[u]!, 1)
        setUnits(wA, flags[u] ? drawsA[u]! : drawsB[u]!, 0)
        setUnits(wB, flags[u] ? drawsA[u]! : drawsB[u]!, 1)
        setUnits(wB, flags[u] ? drawsB[u]! : drawsA[u]!, 0)
      }
    },
    resample: (r, into) => matched(bootstrapCounts(n, r), into),
    jackknife: [Array.from({ length: n }, (_, left) => (into: readonly [Float64Array, Float64Array]) => matched(jackknifeCounts(n, left), into))]
  }
}

/** Unpaired: A's noise draws and B's, pooled for permutations, resampled separately for intervals. */
const unpairedDesign = (a: ReadonlyArray<ImageEvidence>, b: ReadonlyArray<ImageEvidence>, settings: UncertaintySettings, random: ResamplingRandom): Design => {
  const drawsA = noiseDraws(a)
  const drawsB = noiseDraws(b, a.length)
  const pooled = [...drawsA, ...drawsB]
  const both = (countsA: Float64Array, countsB: Float64Array, [wA, wB]: readonly [Float64Array, Float64Array]) => {
    wA.fill(0)
    wB.fill(0)
    drawsA.forEach((images, u) => setUnits(wA, images, countsA[u]!))
    drawsB.forEach((images, u) => setUnits(wB, images, countsB[u]!))
  }
  return {
    test: "unpaired permutation",
    units: [drawsA.length, drawsB.length],
    arrangements: pooledSplits(pooled.length, drawsA.length, settings.resamples, random),
    arrangement: (flags, [wA, wB]) => {
      pooled.forEach((images, u) => {
        setUnits(wA, images, flags[u]!)
        setUnits(wB, images, 1 - flags[u]!)
      })
    },
    resample: (r, into) => both(bootstrapCounts(drawsA.length, r), bootstrapCounts(drawsB.length, r), into),
    jackknife: [
      drawsA.map((_, left) => (into: readonly [Float64Array, Float64Array]) =>
        both(jackknifeCounts(drawsA.length, left), new Float64Array(drawsB.length).fill(1), into)
      ),
      drawsB.map((_, left) => (into: readonly [Float64Array, Float64Array]) =>
        both(new Float64Array(drawsA.length).fill(1), jackknifeCounts(drawsB.length, left), into)
      )
    ]
  }
}

/** Both sides ran once: tests over the images, by permutation; intervals by bootstrap when asked. */
const compareRuns = (
  a: ReplicateEvidence,
  b: ReplicateEvidence,
  settings: UncertaintySettings,
  stream: string,
  intervals: boolean,
  progress: ResamplingProgress
): Effect.Effect<PairComparison | Incomparable> =>
  Effect.gen(function*() {
    const reason = incomparableEvidence(a.evidence, b.evidence)
    if (reason !== undefined) return new Incomparable(reason)
    const imagesA = a.evidence.images
    const imagesB = b.evidence.images
    const space = new EstimateSpace(a.evidence, [...imagesA, ...imagesB])
    // Resamples and jackknife keep each side's images on its side: each is estimated in a space of its own images,
    // whose pooled values are half the shared space's (same estimates, to rounding).
    const spaceA = new EstimateSpace(a.evidence, imagesA)
    const spaceB = new EstimateSpace(b.evidence, imagesB)
    /** A*'s and B*'s weights over the shared space, each read in its own side's space. */
    const ownSides = ([wA, wB]: readonly [Float64Array, Float64Array]) =>
      [[spaceA, wA.subarray(0, imagesA.length)], [spaceB, wB.subarray(imagesA.length)]] as const
    const definitions = commonDefinitions(a.evidence, b.evidence)
    const random = new ResamplingRandom(settings.seed, wordOf(stream))
    const partner = pairing(imagesA, imagesB)
    const design = partner === undefined ? unpairedDesign(imagesA, imagesB, settings, random) : pairedDesign(imagesA, partner, settings, random)
    const weights = [new Float64Array(space.images.length), new Float64Array(space.images.length)] as const
    // The observed difference as each distribution computes it, so that the arrangement or resample that reproduces
    // the observed samples gives it exactly (the test counts ties, BCa counts resamples below it).
    const observed = differencesOf(definitions, [spaceA, spaceA.unitWeights()], [spaceB, spaceB.unitWeights()])
    const arranged = differencesOf(definitions, [space, space.unitWeights(0, imagesA.length)], [space, space.unitWeights(imagesA.length)])
    const { arrangements } = design
    const nulls = definitions.map(() => new Float64Array(arrangements.count))
    const resampled = definitions.map(() => new Float64Array(intervals ? settings.resamples : 0))
    const total = arrangements.count + resampled[0]!.length
    for (let k = 0; k < arrangements.count; k++) {
      design.arrangement(arrangements.at(k), weights)
      differencesOf(definitions, [space, weights[0]], [space, weights[1]]).forEach((v, d) => (nulls[d]![k] = v))
      if ((k + 1) % progressEvery === 0) yield* progress(k + 1, total)
    }
    for (let r = 0; intervals && r < settings.resamples; r++) {
      design.resample(random, weights)
      differencesOf(definitions, ...ownSides(weights)).forEach((v, d) => (resampled[d]![r] = v))
      if ((r + 1) % progressEvery === 0) yield* progress(arrangements.count + r + 1, total)
    }
    const jackknife = design.jackknife.map((sample) =>
      sample.map((leave) => {
        leave(weights)
        return differencesOf(definitions, ...ownSides(weights))
      })
    )
    const differences: Record<string, EstimateDifference> = {}
    definitions.forEach((definition, d) => {
      const exactA = a.estimates[definition.id]?.value
      const exactB = b.estimates[definition.id]?.value
      const exact = exactA === undefined || exactB === undefined ? observed[d]! : comparedValue(definition, exactA) - comparedValue(definition, exactB)
      const p = Number.isFinite(arranged[d]) ? permutationPValue(arranged[d]!, nulls[d]!, arrangements.exact) : NaN
      let low = NaN
      let high = NaN
      if (intervals && Number.isFinite(observed[d])) {
        const interval = bcaInterval(observed[d]!, resampled[d]!, jackknife.map((sample) => Float64Array.from(sample, (values) => values[d]!)), settings.level)
        low = interval.low + exact - observed[d]!
        high = interval.high + exact - observed[d]!
      }
      differences[definition.id] = { difference: exact, low, high, p }
    })
    return {
      test: design.test,
      units: design.units,
      permutations: { count: arrangements.count, exact: arrangements.exact, smallestP: smallestPValue(arrangements.count, arrangements.exact) },
      definitions,
      differences
    } satisfies PairComparison
  })

/** What one side contributes to a replicate-level test of an estimate. */
const sideEvidence = (strategy: StrategyEvidence, definition: EstimateDefinition): MeanEvidence => {
  const values = strategy.replicates.map((r) => r.estimates[definition.id]).filter((e): e is EstimateInterval => e !== undefined && Number.isFinite(e.value))
  if (values.length >= 2) return sampleMean(values.map((e) => comparedValue(definition, e.value)))
  const only = values[0]
  if (only === undefined) return { mean: NaN, variance: NaN, df: Infinity }
  const standardError = definition.direction === "closer" ? only.gapStandardError ?? NaN : only.standardError
  return { mean: comparedValue(definition, only.value), variance: standardError ** 2, df: Infinity }
}

const compareReplicates = (a: StrategyEvidence, b: StrategyEvidence, level: number): PairComparison => {
  // compareStrategies calls this only when both sides have replicates.
  const definitions = commonDefinitions(a.replicates[0]!.evidence, b.replicates[0]!.evidence)
  const differences: Record<string, EstimateDifference> = {}
  for (const definition of definitions) {
    const test = differenceTest(sideEvidence(a, definition), sideEvidence(b, definition), level)
    differences[definition.id] = { difference: test.estimate, low: test.low, high: test.high, p: test.p }
  }
  return { test: "welch", units: [a.replicates.length, b.replicates.length], definitions, differences }
}

/**
 * a against b on every estimate both have. `intervals: false` skips the bootstrap of the
 * difference (p-values only, for deciding which value in a table is best).
 */
export const compareStrategies = (
  a: StrategyEvidence,
  b: StrategyEvidence,
  settings: UncertaintySettings,
  intervals = true,
  progress: ResamplingProgress = () => Effect.yieldNow()
): Effect.Effect<PairComparison | Incomparable> => {
  if (a.replicates.length === 0 || b.replicates.length === 0) return Effect.succeed(new Incomparable("a side has no finished evaluation"))
  if (a.replicates.length === 1 && b.replicates.length === 1) {
    return compareRuns(a.replicates[0]!, b.replicates[0]!, settings, `compare/${a.name}/${b.name}`, intervals, progress)
  }
  return Effect.succeed(compareReplicates(a, b, settings.level))
}
