import { histogramDistances } from "./amplitude-distances.ts"
import type { EvaluationEvidence, ImageEvidence } from "./evaluation-evidence.ts"
import { GLCM_PROPERTIES } from "./glcm.ts"
import {
  evaluationMetrics,
  GLCM_ESTIMATES,
  type MetricDefinition,
  promptAlignmentEstimate,
  promptFollowingEstimates,
  STATISTIC_NAMES,
  statisticEstimate
} from "./metric-catalog.ts"
import { type CdfLayout, cdfDistances, cdfLayout } from "./weighted-cdf-distances.ts"
import { type EmbeddingTerms, embeddingDistances, embeddingTerms } from "./weighted-embedding-distances.ts"

/**
 * Every estimate of an evaluation — its metrics, its GLCM properties, its statistics, its CLIP
 * score per prompt — as a function of how much each generated image weighs: all 1 for the
 * evaluation itself, bootstrap counts for a resample, a swap of two strategies' images for a
 * permutation test. The images of several evaluations judged against the same reference set can
 * share one space, so a resample may mix them.
 *
 * With every weight 1 the estimates equal the evaluation's own metrics (to rounding; exactly
 * where an image keeps all its pixels as atoms): pooled amplitudes are the weighted mixture of
 * the images' values, a set's GLCM and statistics the weighted means of its images', FID_CLIP,
 * KID_CLIP and CMMD the formulas on the multiset in which image i appears wᵢ times.
 */

export interface EstimateDefinition extends MetricDefinition {
  /** The real set's value, which a "closer" estimate should approach. */
  readonly reference?: number
}

const mean = (values: ArrayLike<number>) => {
  let s = 0
  for (let i = 0; i < values.length; i++) s += values[i]!
  return s / values.length
}

const isScored = (images: ReadonlyArray<ImageEvidence>) => images.length > 0 && images.every((i) => i.clip !== undefined)

const followsPrompts = (images: ReadonlyArray<ImageEvidence>) => images.length > 0 && images.every((i) => i.following !== undefined)

/** The prompt-following estimates the images have: per split present, and over all prompts. */
const followingEstimatesOf = (images: ReadonlyArray<ImageEvidence>) =>
  followsPrompts(images) ? promptFollowingEstimates.filter((e) => e.split === "all" || images.some((i) => i.split === e.split)) : []

const promptIndicesOf = (images: ReadonlyArray<ImageEvidence>) => [...new Set(images.map((i) => i.promptIndex))].sort((a, b) => a - b)

const isEmbedded = (evidence: EvaluationEvidence, images: ReadonlyArray<ImageEvidence>) =>
  images.length >= 2 && images.every((i) => i.embedding !== undefined) && (evidence.reference.embeddings?.count ?? 0) >= 2

/** What an evaluation estimates, in the order EstimateSpace.estimates returns it. */
export const estimateDefinitions = (
  evidence: EvaluationEvidence,
  images: ReadonlyArray<ImageEvidence> = evidence.images
): ReadonlyArray<EstimateDefinition> => {
  const reference = evidence.reference
  const perProperty = reference.glcm.length / GLCM_PROPERTIES.length
  const definitions: Array<EstimateDefinition> = [
    ...[
      evaluationMetrics.wasserstein,
      evaluationMetrics.ks,
      evaluationMetrics.kl,
      evaluationMetrics.js,
      evaluationMetrics.hellinger,
      evaluationMetrics.bhattacharyya
    ],
    evaluationMetrics.glcmCanberra,
    ...STATISTIC_NAMES.map((name) => ({ ...statisticEstimate(name), reference: reference.statistics[name] })),
    ...GLCM_ESTIMATES.map((definition, p) => ({ ...definition, reference: mean(reference.glcm.subarray(p * perProperty, (p + 1) * perProperty)) }))
  ]
  if (isScored(images)) {
    for (const split of ["seen", "unseen"] as const) {
      if (images.some((i) => i.split === split)) definitions.push(split === "seen" ? evaluationMetrics.clipSeen : evaluationMetrics.clipUnseen)
    }
    for (const index of promptIndicesOf(images)) definitions.push(promptAlignmentEstimate(index))
  }
  for (const estimate of followingEstimatesOf(images)) definitions.push(estimate.metric)
  if (isEmbedded(evidence, images)) definitions.push(evaluationMetrics.fidClip, evaluationMetrics.kidClip, evaluationMetrics.cmmd)
  return definitions
}

/** The estimates of images weighted by `weights` (one per image of the space), in `definitions` order. */
export class EstimateSpace {
  readonly definitions: ReadonlyArray<EstimateDefinition>
  /** Each definition's position in `definitions` (and in every estimates array), by id. */
  readonly positionOf: ReadonlyMap<string, number>
  private readonly cdf: CdfLayout
  private readonly embeddings: EmbeddingTerms | undefined
  private readonly promptIndices: ReadonlyArray<number>
  private readonly following: ReturnType<typeof followingEstimatesOf>
  private readonly glcmLength: number

  /** All evidences must be judged against the same reference with the same settings (see `incomparableEvidence`). */
  constructor(readonly evidence: EvaluationEvidence, readonly images: ReadonlyArray<ImageEvidence>) {
    const reference = evidence.reference
    this.cdf = cdfLayout(images, evidence)
    this.glcmLength = reference.glcm.length
    this.promptIndices = isScored(images) ? promptIndicesOf(images) : []
    this.following = followingEstimatesOf(images)
    this.embeddings = isEmbedded(evidence, images) ? embeddingTerms(images, reference.embeddings!) : undefined
    this.definitions = estimateDefinitions(evidence, images)
    this.positionOf = new Map(this.definitions.map((d, i) => [d.id, i]))
  }

  /** Unit weights on the images in [start, end), 0 elsewhere. */
  unitWeights(start = 0, end = this.images.length): Float64Array {
    const weights = new Float64Array(this.images.length)
    weights.fill(1, start, end)
    return weights
  }

  estimates(weights: Float64Array): Float64Array {
    return this.measure(weights).estimates
  }

  /**
   * The estimates, and the weighted pooled distribution the report draws: the fraction of generated values per bin,
   * and the values at cumulative probabilities `probabilities` (the k-th smallest of T pooled values with
   * k = round(p·(T − 1)), as distributionOf takes them). One pass over the pooled values gives both.
   */
  estimatesAndDistribution(
    weights: Float64Array,
    probabilities: ReadonlyArray<number>
  ): { estimates: Float64Array; density: Float64Array; quantiles: Float64Array } {
    const quantiles = new Float64Array(probabilities.length)
    const { estimates, histogram, pixels } = this.measure(weights, probabilities, quantiles)
    return { estimates, density: histogram.map((count) => count / pixels), quantiles }
  }

  private measure(weights: Float64Array, probabilities: ReadonlyArray<number> = [], quantiles?: Float64Array) {
    const { images, evidence } = this
    const { reference, settings } = evidence
    const out: Array<number> = []
    let pixels = 0
    let total = 0
    const histogram = new Float64Array(reference.histogram.length)
    const glcm = new Float64Array(this.glcmLength)
    images.forEach((image, i) => {
      const w = weights[i]!
      if (w === 0) return
      pixels += w * image.pixels
      total += w
      for (let k = 0; k < histogram.length; k++) histogram[k]! += w * image.histogram[k]!
      for (let k = 0; k < glcm.length; k++) glcm[k]! += w * image.glcm[k]!
    })
    if (total === 0) return { estimates: new Float64Array(this.definitions.length).fill(NaN), histogram, pixels }
    const ranks = Float64Array.from(probabilities, (p) => Math.min(pixels - 1, Math.round(p * (pixels - 1))))
    const { ks, wasserstein } = cdfDistances(this.cdf, weights, pixels, quantiles === undefined ? undefined : { ranks, into: quantiles })
    let generatedCounts = 0
    let referenceCounts = 0
    for (let k = 0; k < histogram.length; k++) {
      generatedCounts += histogram[k]!
      referenceCounts += reference.histogram[k]!
    }
    const histogramPart = histogramDistances(histogram, reference.histogram, generatedCounts, referenceCounts, settings.klPseudoCount)
    out.push(wasserstein, ks, histogramPart.kl, histogramPart.js, histogramPart.hellinger, histogramPart.bhattacharyya)
    for (let k = 0; k < glcm.length; k++) glcm[k]! /= total
    let canberra = 0
    for (let k = 0; k < glcm.length; k++) {
      const denominator = Math.abs(glcm[k]!) + Math.abs(reference.glcm[k]!)
      if (denominator > 0) canberra += Math.abs(glcm[k]! - reference.glcm[k]!) / denominator
    }
    out.push(canberra)
    for (const name of STATISTIC_NAMES) {
      let sum = 0
      let weight = 0
      images.forEach((image, i) => {
        const v = image.statistics[name]
        if (weights[i]! > 0 && Number.isFinite(v)) {
          sum += weights[i]! * v
          weight += weights[i]!
        }
      })
      out.push(weight === 0 ? NaN : sum / weight)
    }
    const perProperty = this.glcmLength / GLCM_PROPERTIES.length
    for (let p = 0; p < GLCM_PROPERTIES.length; p++) out.push(mean(glcm.subarray(p * perProperty, (p + 1) * perProperty)))
    const weightedMean = (include: (image: ImageEvidence) => boolean, value: (image: ImageEvidence) => number) => {
      let sum = 0
      let weight = 0
      images.forEach((image, i) => {
        const w = weights[i] ?? 0
        if (w > 0 && include(image)) {
          sum += w * value(image)
          weight += w
        }
      })
      return weight === 0 ? NaN : sum / weight
    }
    if (this.promptIndices.length > 0) {
      const clip = (image: ImageEvidence) => image.clip!
      for (const split of ["seen", "unseen"] as const) if (images.some((i) => i.split === split)) out.push(weightedMean((i) => i.split === split, clip))
      for (const index of this.promptIndices) out.push(weightedMean((i) => i.promptIndex === index, clip))
    }
    for (const { split, value } of this.following) {
      out.push(weightedMean((i) => split === "all" || i.split === split, (i) => i.following![value]))
    }
    if (this.embeddings !== undefined) {
      const { cmmd, fid, kid } = total >= 2 ? embeddingDistances(this.embeddings, weights, reference.embeddings!.count) : { fid: NaN, kid: NaN, cmmd: NaN }
      out.push(fid, kid, cmmd)
    }
    return { estimates: Float64Array.from(out), histogram, pixels }
  }
}

/** Why two evaluations' images cannot share a space, or undefined when they can. */
export const incomparableEvidence = (a: EvaluationEvidence, b: EvaluationEvidence): string | undefined => {
  if (a.referenceKey !== b.referenceKey) return "they are judged against different reference sets"
  const sa = a.settings
  const sb = b.settings
  if (sa.binning.bins !== sb.binning.bins || sa.binning.lo !== sb.binning.lo || sa.binning.hi !== sb.binning.hi) {
    return "their amplitude distances use different domains or bins"
  }
  if (sa.klPseudoCount !== sb.klPseudoCount) return "their KL smoothing differs"
  if (JSON.stringify(sa.texture) !== JSON.stringify(sb.texture)) return "their GLCM levels, distances or angles differ"
  return undefined
}
