import { Effect } from "effect"
import { type Binning, type DistanceDomain, domainBinning, histogramOfSorted, normalisedSamples, toDomain } from "./amplitude-distances.ts"
import { type AmplitudeStatistics, amplitudeStatistics } from "./amplitude-statistics.ts"
import { sortFloat32 } from "./float32-sort.ts"
import { GLCM_PROPERTIES, type GlcmProperties } from "./glcm.ts"
import { STATISTIC_NAMES, type StatisticName } from "./metric-catalog.ts"
import type { MetricInputError, SampleImage } from "./metric-input.ts"
import { compareSets, poolSamples, type SetComparison, type SetSummary } from "./set-comparison.ts"
import { imageTexture, setTexture, type TextureSettings } from "./texture-sets.ts"

/**
 * What an evaluation keeps of each generated image so that its metrics can be recomputed on
 * resamples of the images — for intervals, and for comparisons with another strategy — without
 * reading the images again: per image, its normalised amplitudes in the declared domain (sorted,
 * as quantile atoms), their histogram on the declared bins, its GLCM properties, its amplitude
 * statistics, its CLIP score and image embedding; the same of the reference set as a whole.
 *
 * Wasserstein-1 and KS use the atoms. An image of at most `atomsPerImage` pixels keeps every
 * value, so resampled distances are exact; a larger one keeps that many evenly spaced quantiles
 * (midpoint rule), each standing for the same share of its pixels. The reference keeps up to
 * `referenceAtoms` the same way. Histogram distances always use the exact counts.
 */
export const atomsPerImage = 4096
export const referenceAtoms = 1 << 18

export interface ImageEvidence {
  /** Position of its prompt in the declaration, and the prompt as declared. */
  readonly promptIndex: number
  readonly prompt: string
  readonly split: "seen" | "unseen"
  /** Its noise: the sampling seed and which sample of that seed (samplesPerPrompt). */
  readonly seed: number
  readonly sample: number
  /** Pixels the atoms stand for. */
  readonly pixels: number
  /** Sorted values in the declared domain. */
  readonly atoms: Float32Array
  /** Counts on the declared bins. */
  readonly histogram: Float64Array
  /** GLCM properties flattened [property][distance][angle], in GLCM_PROPERTIES order. */
  readonly glcm: Float64Array
  readonly statistics: Readonly<Record<StatisticName, number>>
  /** 100 · cos(image, prompt), when alignment is evaluated. */
  readonly clip?: number
  readonly embedding?: Float32Array
}

export interface ReferenceEvidence {
  readonly images: number
  readonly pixels: number
  readonly atoms: Float32Array
  readonly histogram: Float64Array
  /** The set's mean GLCM properties, flattened as an image's. */
  readonly glcm: Float64Array
  readonly statistics: Readonly<Record<StatisticName, number>>
  /** Row-major count × dim image embeddings, when embedding distances are evaluated. */
  readonly embeddings?: { readonly count: number; readonly dim: number; readonly data: Float32Array }
}

export interface EvidenceSettings {
  readonly binning: Binning
  readonly klPseudoCount: number
  readonly texture: TextureSettings
}

export interface EvaluationEvidence {
  readonly settings: EvidenceSettings
  readonly images: ReadonlyArray<ImageEvidence>
  readonly reference: ReferenceEvidence
  /** The reference step's content key: evidences compare only against the same real set. */
  readonly referenceKey: string
}

/** `count` midpoint quantiles of sorted values (all of them when there are at most `count`). */
const atomsOf = (sorted: Float32Array, count: number): Float32Array => {
  if (sorted.length <= count) return sorted
  const atoms = new Float32Array(count)
  for (let k = 0; k < count; k++) atoms[k] = sorted[Math.floor(((k + 0.5) * sorted.length) / count)]!
  return atoms
}

/** Atoms and histogram of one image's (or a set's pooled) values in the domain. */
export const distributionEvidence = (values: Float32Array, binning: Binning, maxAtoms: number) => {
  const sorted = sortFloat32(values)
  return { pixels: sorted.length, atoms: atomsOf(sorted, maxAtoms), histogram: histogramOfSorted(sorted, binning) }
}

export const flattenGlcm = (properties: GlcmProperties): Float64Array => Float64Array.from(GLCM_PROPERTIES.flatMap((name) => properties[name].flat()))

/** The noise draws of a set of images: images sharing a seed and sample index share their starting noise. */
export const noiseDrawOf = (image: Pick<ImageEvidence, "seed" | "sample">) => `${image.seed}/${image.sample}`

/** What the evaluation measures of one image, once. */
export interface MeasuredImage {
  /** Normalised amplitude v = clip(A / (mean + 3·std), 0, 1) of the selected pixels. */
  readonly normalised: Float32Array
  readonly texture: GlcmProperties
  readonly statistics: AmplitudeStatistics
}

export const measureImage = (image: SampleImage, texture: TextureSettings): Effect.Effect<MeasuredImage, MetricInputError> =>
  Effect.gen(function*() {
    return {
      normalised: yield* normalisedSamples(image),
      texture: yield* imageTexture(image, texture),
      statistics: yield* amplitudeStatistics(image)
    }
  })

/** Per-image statistics averaged over a set (ENL and CV are meaningful per image, not pooled); NaN ones left out. */
export const meanStatistics = (all: ReadonlyArray<Pick<AmplitudeStatistics, StatisticName>>): Record<StatisticName, number> =>
  Object.fromEntries(STATISTIC_NAMES.map((name) => {
    const finite = all.map((s) => s[name]).filter(Number.isFinite)
    return [name, finite.length === 0 ? Number.NaN : finite.reduce((a, b) => a + b, 0) / finite.length]
  })) as Record<StatisticName, number>

export interface GeneratedImage extends Pick<ImageEvidence, "promptIndex" | "prompt" | "split" | "seed" | "sample" | "clip" | "embedding"> {
  readonly measured: MeasuredImage
}

export interface EvidenceRequest {
  readonly generated: ReadonlyArray<GeneratedImage>
  readonly reference: ReadonlyArray<MeasuredImage>
  readonly referenceEmbeddings?: ReferenceEvidence["embeddings"]
  readonly referenceKey: string
  readonly domain: DistanceDomain
  readonly bins: number
  readonly klPseudoCount: number
  readonly texture: TextureSettings
}

export interface MeasuredEvaluation {
  readonly evidence: EvaluationEvidence
  /** The set comparison from every pixel (the reported metrics). */
  readonly comparison: SetComparison
  readonly generated: SetSummary
  readonly real: SetSummary
  readonly generatedStatistics: Record<StatisticName, number>
  readonly referenceStatistics: Record<StatisticName, number>
}

/** The exact set comparison of the generated and reference images, and the evidence to resample it. */
export const measureEvaluation = (request: EvidenceRequest): Effect.Effect<MeasuredEvaluation, MetricInputError> =>
  Effect.gen(function*() {
    const { domain, texture } = request
    const binning = domainBinning(domain, request.bins)
    const generated: SetSummary = {
      images: request.generated.length,
      samples: poolSamples(request.generated.map((g) => g.measured.normalised)),
      texture: setTexture(request.generated.map((g) => g.measured.texture))
    }
    const real: SetSummary = {
      images: request.reference.length,
      samples: poolSamples(request.reference.map((r) => r.normalised)),
      texture: setTexture(request.reference.map((r) => r.texture))
    }
    const comparison = yield* compareSets({ ...generated, name: "generated" }, { ...real, name: "reference" }, {
      domain,
      bins: request.bins,
      klPseudoCount: request.klPseudoCount,
      texture
    })
    const generatedStatistics = meanStatistics(request.generated.map((g) => g.measured.statistics))
    const referenceStatistics = meanStatistics(request.reference.map((r) => r.statistics))
    const images = request.generated.map((g): ImageEvidence => ({
      promptIndex: g.promptIndex,
      prompt: g.prompt,
      split: g.split,
      seed: g.seed,
      sample: g.sample,
      ...distributionEvidence(toDomain(g.measured.normalised, domain), binning, atomsPerImage),
      glcm: flattenGlcm(g.measured.texture),
      statistics: Object.fromEntries(STATISTIC_NAMES.map((name) => [name, g.measured.statistics[name]])) as Record<StatisticName, number>,
      ...(g.clip === undefined ? {} : { clip: g.clip }),
      ...(g.embedding === undefined ? {} : { embedding: g.embedding })
    }))
    const reference: ReferenceEvidence = {
      images: request.reference.length,
      ...distributionEvidence(toDomain(real.samples, domain), binning, referenceAtoms),
      glcm: flattenGlcm(real.texture),
      statistics: referenceStatistics,
      ...(request.referenceEmbeddings === undefined ? {} : { embeddings: request.referenceEmbeddings })
    }
    return {
      evidence: { settings: { binning, klPseudoCount: request.klPseudoCount, texture }, images, reference, referenceKey: request.referenceKey },
      comparison,
      generated,
      real,
      generatedStatistics,
      referenceStatistics
    }
  })
