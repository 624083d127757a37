import { Effect } from "effect"
import {
  amplitudeDistances,
  type AmplitudeDistances,
  type DistanceDomain,
  domainBinning,
  histogramOfSorted,
  normalisedSamples,
  toDomain
} from "./amplitude-distances.ts"
import { sortFloat32 } from "./float32-sort.ts"
import type { GlcmProperties } from "./glcm.ts"
import type { MetricInputError, SampleImage } from "./metric-input.ts"
import { imageTexture, setTexture, type TextureSettings, textureSetDistance } from "./texture-sets.ts"

/**
 * Comparing two sets of SAR images the way `sardine compare` and the evaluate step both do:
 * every image normalised on its own (v = clip(A / (mean + 3·std), 0, 1)), the v of each set
 * pooled for the amplitude distances, the GLCM properties averaged per set and compared by their
 * Canberra distance.
 */
export interface SetSummary {
  readonly images: number
  /** Pooled normalised amplitude v of every image. */
  readonly samples: Float32Array
  readonly texture: GlcmProperties
}

export interface SetComparisonSettings {
  readonly domain: DistanceDomain
  readonly bins: number
  readonly klPseudoCount: number
  readonly texture: TextureSettings
}

export interface SetComparison {
  readonly amplitude: AmplitudeDistances
  readonly glcm: { readonly canberra: number; readonly a: GlcmProperties; readonly b: GlcmProperties }
}

/** The values of several images one after the other. */
export const poolSamples = (parts: ReadonlyArray<Float32Array>): Float32Array => {
  const samples = new Float32Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const p of parts) {
    samples.set(p, offset)
    offset += p.length
  }
  return samples
}

/** Summarises images one at a time, so only the pooled samples stay in memory. */
export const summariseSet = <E, R>(
  count: number,
  image: (index: number) => Effect.Effect<SampleImage, E, R>,
  texture: TextureSettings
): Effect.Effect<SetSummary, E | MetricInputError, R> =>
  Effect.gen(function*() {
    const parts: Array<Float32Array> = []
    const textures: Array<GlcmProperties> = []
    for (let i = 0; i < count; i++) {
      const amplitude = yield* image(i)
      parts.push(yield* normalisedSamples(amplitude))
      textures.push(yield* imageTexture(amplitude, texture))
    }
    return { images: count, samples: poolSamples(parts), texture: setTexture(textures) }
  })

export const compareSets = (
  a: SetSummary & { readonly name: string },
  b: SetSummary & { readonly name: string },
  settings: SetComparisonSettings
): Effect.Effect<SetComparison, MetricInputError> =>
  Effect.gen(function*() {
    const amplitude = yield* amplitudeDistances(
      { name: a.name, samples: toDomain(a.samples, settings.domain) },
      { name: b.name, samples: toDomain(b.samples, settings.domain) },
      domainBinning(settings.domain, settings.bins),
      settings.klPseudoCount
    )
    return { amplitude, glcm: { canberra: textureSetDistance(a.texture, b.texture), a: a.texture, b: b.texture } }
  })

/** A set's distribution in the domain, for plots: bin probabilities and the CDF at fixed probabilities. */
export interface Distribution {
  readonly edges: ReadonlyArray<number>
  /** Fraction of samples per bin. */
  readonly density: ReadonlyArray<number>
  /** Values at cumulative probabilities `probabilities` (the empirical quantile function). */
  readonly quantiles: ReadonlyArray<number>
  readonly probabilities: ReadonlyArray<number>
}

export const distributionOf = (summary: SetSummary, domain: DistanceDomain, bins: number, points = 101): Distribution => {
  const sorted = sortFloat32(toDomain(summary.samples, domain))
  const binning = domainBinning(domain, bins)
  const counts = histogramOfSorted(sorted, binning)
  const total = sorted.length
  const step = (binning.hi - binning.lo) / bins
  const probabilities = Array.from({ length: points }, (_, i) => i / (points - 1))
  return {
    edges: Array.from({ length: bins + 1 }, (_, k) => (k === bins ? binning.hi : binning.lo + k * step)),
    density: Array.from(counts, (c) => c / total),
    probabilities,
    quantiles: probabilities.map((p) => sorted[Math.min(total - 1, Math.round(p * (total - 1)))]!)
  }
}
