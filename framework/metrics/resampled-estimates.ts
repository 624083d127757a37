import { histogramDistances } from "./amplitude-distances.ts"
import type { EvaluationEvidence, ImageEvidence } from "./evaluation-evidence.ts"
import { GLCM_PROPERTIES } from "./glcm.ts"
import { evaluationMetrics, GLCM_ESTIMATES, type MetricDefinition, promptAlignmentEstimate, STATISTIC_NAMES, statisticEstimate } from "./metric-catalog.ts"
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
  if (isEmbedded(evidence, images)) definitions.push(evaluationMetrics.fidClip, evaluationMetrics.kidClip, evaluationMetrics.cmmd)
  return definitions
}

/** The estimates of images weighted by `weights` (one per image of the space), in `definitions` order. */
export class EstimateSpace {
  readonly definitions: ReadonlyArray<EstimateDefinition>
  private readonly cdf: CdfLayout
  private readonly embeddings: EmbeddingTerms | undefined
  private readonly promptIndices: ReadonlyArray<number>
  private readonly glcmLength: number

  /** All evidences must be judged against the same reference with the same settings (see `incomparableEvidence`). */
  constructor(readonly evidence: EvaluationEvidence, readonly images: ReadonlyArray<ImageEvidence>) {
    const reference = evidence.reference
    this.cdf = cdfLayout(images, evidence)
    this.glcmLength = reference.glcm.length
    this.promptIndices = isScored(images) ? promptIndicesOf(images) : []
    this.embeddings = isEmbedded(evidence, images) ? embeddingTerms(images, reference.embeddings!) : undefined
    this.definitions = estimateDefinitions(evidence, images)
  }

  /** Unit weights on the images in [start, end), 0 elsewhere. */
  unitWeights(start = 0, end = this.images.length): Float64Array {
    const weights = new Float64Array(this.images.length)
    weights.fill(1, start, end)
    return weights
  }

  estimates(weights: Float64Array): Float64Array {
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
    if (total === 0) return new Float64Array(this.definitions.length).fill(NaN)
    const { ks, wasserstein } = cdfDistances(this.cdf, weights, pixels)
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
    if (this.promptIndices.length > 0) {
      const weightedClip = (include: (image: ImageEvidence) => boolean) => {
        let sum = 0
        let weight = 0
        images.forEach((image, i) => {
          if (weights[i]! > 0 && include(image)) {
            sum += weights[i]! * image.clip!
            weight += weights[i]!
          }
        })
        return weight === 0 ? NaN : sum / weight
      }
      for (const split of ["seen", "unseen"] as const) if (images.some((i) => i.split === split)) out.push(weightedClip((i) => i.split === split))
      for (const index of this.promptIndices) out.push(weightedClip((i) => i.promptIndex === index))
    }
    if (this.embeddings !== undefined) {
      const { cmmd, fid, kid } = total >= 2 ? embeddingDistances(this.embeddings, weights, reference.embeddings!.count) : { fid: NaN, kid: NaN, cmmd: NaN }
      out.push(fid, kid, cmmd)
    }
    return Float64Array.from(out)
  }

  /**
   * The weighted pooled distribution the report draws: the fraction of generated values per bin,
   * and the values at cumulative probabilities `probabilities` (the k-th smallest of T pooled
   * values with k = round(p·(T − 1)), as distributionOf takes them).
   */
  distribution(weights: Float64Array, probabilities: ReadonlyArray<number>): { density: Float64Array; quantiles: Float64Array } {
    const { images } = this
    const density = new Float64Array(this.evidence.reference.histogram.length)
    let pixels = 0
    images.forEach((image, i) => {
      const w = weights[i]!
      if (w === 0) return
      pixels += w * image.pixels
      for (let k = 0; k < density.length; k++) density[k]! += w * image.histogram[k]!
    })
    for (let k = 0; k < density.length; k++) density[k]! /= pixels
    const quantiles = new Float64Array(probabilities.length)
    const { masses, owners, start, values } = this.cdf
    let cumulative = 0
    let q = 0
    for (let k = 0; k < values.length && q < probabilities.length; k++) {
      for (let c = start[k]!; c < start[k + 1]!; c++) cumulative += weights[owners[c]!]! * masses[c]!
      while (q < probabilities.length && cumulative > Math.min(pixels - 1, Math.round(probabilities[q]! * (pixels - 1)))) quantiles[q++] = values[k]!
    }
    for (; q < probabilities.length; q++) quantiles[q] = values[values.length - 1]!
    return { density, quantiles }
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
