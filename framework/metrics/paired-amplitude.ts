import { Effect } from "effect"
import { amplitudeDistances, type DistanceDomain, domainBinning, normalisedSamples, toDomain } from "./amplitude-distances.ts"
import { quantileOfSorted } from "./amplitude-statistics.ts"
import type { MetricInputError, SampleImage } from "./metric-input.ts"

/**
 * Paired evaluation of a conditioned experiment: each generated image against the true image of the
 * scene whose condition produced it. Both are normalised on their own (v = clip(A / (mean + 3·std), 0, 1)),
 * as the set comparison does, so a pair's distances are those of `sardine compare` on the two images.
 */
export interface PairDistances {
  /** Wasserstein-1 between the two images' amplitude distributions. */
  readonly wasserstein: number
  /** Kolmogorov–Smirnov statistic between them. */
  readonly ks: number
}

export const pairedAmplitudeDistances = (
  generated: SampleImage,
  truth: SampleImage,
  domain: DistanceDomain,
  bins: number,
  klPseudoCount: number
): Effect.Effect<PairDistances, MetricInputError> =>
  Effect.gen(function*() {
    const a = toDomain(yield* normalisedSamples(generated), domain)
    const b = toDomain(yield* normalisedSamples(truth), domain)
    const d = yield* amplitudeDistances({ name: generated.name, samples: a }, { name: truth.name, samples: b }, domainBinning(domain, bins), klPseudoCount)
    return { wasserstein: d.wasserstein, ks: d.ks }
  })

/** A per-pair value's distribution over the pairs: quartiles and range (numpy's linear quantiles) and mean. */
export interface Spread {
  readonly n: number
  readonly mean: number
  readonly min: number
  readonly q25: number
  readonly median: number
  readonly q75: number
  readonly max: number
}

export const spreadOf = (values: ReadonlyArray<number>): Spread => {
  const sorted = Float64Array.from(values).sort()
  const n = sorted.length
  if (n === 0) return { n, mean: NaN, min: NaN, q25: NaN, median: NaN, q75: NaN, max: NaN }
  return {
    n,
    mean: values.reduce((a, b) => a + b, 0) / n,
    min: sorted[0]!,
    q25: quantileOfSorted(sorted, 0.25),
    median: quantileOfSorted(sorted, 0.5),
    q75: quantileOfSorted(sorted, 0.75),
    max: sorted[n - 1]!
  }
}
