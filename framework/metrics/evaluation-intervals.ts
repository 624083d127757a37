import { Effect } from "effect"
import { bcaInterval, bootstrapStandardError, percentileInterval } from "./bootstrap-interval.ts"
import { type EvaluationEvidence, type ImageEvidence, noiseDrawOf } from "./evaluation-evidence.ts"
import { type EstimateDefinition, EstimateSpace } from "./resampled-estimates.ts"
import { bootstrapCounts, jackknifeCounts } from "./resampling-plans.ts"
import { ResamplingRandom, wordOf } from "./resampling-random.ts"

/**
 * 95 % (declared level) intervals of every estimate of one evaluation, by a bootstrap over its
 * noise draws: the images that share a sampling seed and sample index share their starting noise
 * (one image per prompt), so a resample draws noise draws with replacement and takes all their
 * images. Every prompt therefore appears equally often in every resample (prompts are strata,
 * never resampled: the study chose them), and images that share noise stay together. Intervals
 * are BCa (jackknife over noise draws); seeded by `uncertainty.seed`.
 */

export interface UncertaintySettings {
  readonly level: number
  readonly resamples: number
  readonly seed: number
}

export interface EstimateInterval {
  readonly value: number
  readonly low: number
  readonly high: number
  /** Standard deviation of the bootstrap distribution. */
  readonly standardError: number
  /** For "closer" estimates: the bootstrap standard error of the gap to the real value, which comparisons test. */
  readonly gapStandardError?: number
  /** "percentile" where BCa is undefined (see bcaInterval); "none" when the estimate is not a number. */
  readonly method: "bca" | "percentile" | "none"
}

/** The noise draws of a set of images: image indices per draw, in first-seen order. */
export const noiseDraws = (images: ReadonlyArray<Pick<ImageEvidence, "seed" | "sample">>, offset = 0): ReadonlyArray<ReadonlyArray<number>> => {
  const draws = new Map<string, Array<number>>()
  images.forEach((image, i) => {
    const key = noiseDrawOf(image)
    draws.set(key, [...(draws.get(key) ?? []), offset + i])
  })
  return [...draws.values()]
}

/** Image weights from per-draw counts. */
export const weightsOfDraws = (draws: ReadonlyArray<ReadonlyArray<number>>, counts: Float64Array, into: Float64Array): Float64Array => {
  draws.forEach((images, d) => {
    for (const i of images) into[i] = counts[d]!
  })
  return into
}

/** The quantity comparisons test: the value, or for "closer" estimates its distance to the real value. */
export const comparedValue = (definition: EstimateDefinition, value: number): number =>
  definition.direction === "closer" ? Math.abs(value - (definition.reference ?? NaN)) : value

export interface DistributionBand {
  readonly densityLow: ReadonlyArray<number>
  readonly densityHigh: ReadonlyArray<number>
  readonly quantileLow: ReadonlyArray<number>
  readonly quantileHigh: ReadonlyArray<number>
}

export interface EvaluationIntervals {
  readonly definitions: ReadonlyArray<EstimateDefinition>
  readonly estimates: Readonly<Record<string, EstimateInterval>>
  /** Noise draws resampled. */
  readonly draws: number
  /** Pointwise intervals of the generated distribution the report draws. */
  readonly band: DistributionBand
}

const pointwise = (rows: ReadonlyArray<Float64Array>, level: number) => {
  const width = rows[0]?.length ?? 0
  const low: Array<number> = []
  const high: Array<number> = []
  for (let k = 0; k < width; k++) {
    const interval = percentileInterval(Float64Array.from(rows, (r) => r[k]!), level)
    low.push(interval.low)
    high.push(interval.high)
  }
  return { low, high }
}

/** Reports resamples done; the resampling loops hand control back through it, so they stay interruptible. */
export type ResamplingProgress = (done: number, total: number) => Effect.Effect<void>

const quietProgress: ResamplingProgress = () => Effect.yieldNow()

/** Every this many resamples the loops report progress and yield. */
export const progressEvery = 25

/**
 * Intervals of every estimate. `exact` holds the evaluation's own values where they were computed
 * exactly (from every pixel, by the metric functions); an interval computed on atoms is moved by
 * the difference, so it stays around the reported value.
 */
export const evaluationIntervals = (
  evidence: EvaluationEvidence,
  settings: UncertaintySettings,
  probabilities: ReadonlyArray<number>,
  exact: Readonly<Record<string, number | undefined>> = {},
  progress: ResamplingProgress = quietProgress
): Effect.Effect<EvaluationIntervals> =>
  Effect.gen(function*() {
    const space = new EstimateSpace(evidence, evidence.images)
    const draws = noiseDraws(evidence.images)
    const observed = space.estimates(space.unitWeights())
    const random = new ResamplingRandom(settings.seed, wordOf("evaluation"))
    const { definitions } = space
    const resampled = definitions.map(() => new Float64Array(settings.resamples))
    const gaps = definitions.map(() => new Float64Array(settings.resamples))
    const densities: Array<Float64Array> = []
    const quantiles: Array<Float64Array> = []
    const weights = new Float64Array(evidence.images.length)
    for (let r = 0; r < settings.resamples; r++) {
      weightsOfDraws(draws, bootstrapCounts(draws.length, random), weights)
      const { density, estimates: values, quantiles: valuesAt } = space.estimatesAndDistribution(weights, probabilities)
      definitions.forEach((definition, d) => {
        resampled[d]![r] = values[d]!
        gaps[d]![r] = comparedValue(definition, values[d]!)
      })
      densities.push(density)
      quantiles.push(valuesAt)
      if ((r + 1) % progressEvery === 0) yield* progress(r + 1, settings.resamples)
    }
    const jackknife = definitions.map(() => new Float64Array(draws.length))
    for (let left = 0; left < draws.length; left++) {
      const values = space.estimates(weightsOfDraws(draws, jackknifeCounts(draws.length, left), weights))
      definitions.forEach((_, d) => (jackknife[d]![left] = values[d]!))
    }
    const estimates: Record<string, EstimateInterval> = {}
    definitions.forEach((definition, d) => {
      const value = exact[definition.id] ?? observed[d]!
      if (!Number.isFinite(observed[d]) || !Number.isFinite(value) || draws.length < 2) {
        estimates[definition.id] = { value, low: NaN, high: NaN, standardError: NaN, method: "none" }
        return
      }
      const interval = bcaInterval(observed[d]!, resampled[d]!, [jackknife[d]!], settings.level)
      const shift = value - observed[d]!
      estimates[definition.id] = {
        value,
        low: interval.low + shift,
        high: interval.high + shift,
        standardError: bootstrapStandardError(resampled[d]!),
        ...(definition.direction === "closer" ? { gapStandardError: bootstrapStandardError(gaps[d]!) } : {}),
        method: interval.method
      }
    })
    const density = pointwise(densities, settings.level)
    const quantile = pointwise(quantiles, settings.level)
    return {
      definitions,
      estimates,
      draws: draws.length,
      band: { densityLow: density.low, densityHigh: density.high, quantileLow: quantile.low, quantileHigh: quantile.high }
    }
  })
