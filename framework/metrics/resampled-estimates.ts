import { histogramDistances } from "./amplitude-distances.ts"
import { CMMD_SCALE, gaussianKernel, meanAndCovariance, polynomialKernel } from "./embedding-distances.ts"
import type { EvaluationEvidence, ImageEvidence } from "./evaluation-evidence.ts"
import { GLCM_PROPERTIES } from "./glcm.ts"
import {
  evaluationMetrics,
  GLCM_ESTIMATES,
  type MetricDefinition,
  promptAlignmentEstimate,
  STATISTIC_NAMES,
  statisticEstimate
} from "./metric-catalog.ts"
import { symmetricEigen, symmetricEigenvalues } from "./symmetric-eigen.ts"

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
  for (let i = 0; i < values.length; i++) s += values[i]
  return s / values.length
}

/**
 * The pooled generated CDF F against the reference CDF G, laid out once per space so that a
 * resample costs a pass over the generated values only. Between two consecutive generated values
 * F is constant while G steps through the reference values there ("pieces": from one breakpoint
 * of either set to the next, with G's value on it). For a constant F, a segment's share of
 * Wasserstein-1, Σ |F − γⱼ| ℓⱼ, follows from prefix sums of ℓ and γℓ and a binary search for F
 * among its γ (non-decreasing), and its largest gap |F − γ| is at one of its ends.
 */
interface CdfLayout {
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

const cdfLayout = (images: ReadonlyArray<ImageEvidence>, evidence: EvaluationEvidence): CdfLayout => {
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
  const order = Uint32Array.from({ length: generatedCount }, (_, i) => i).sort((a, b) => values[a] - values[b])
  const distinct: Array<number> = []
  const start: Array<number> = []
  const sortedOwners = new Int32Array(generatedCount)
  const masses = new Float64Array(generatedCount)
  order.forEach((i, k) => {
    if (distinct.length === 0 || values[i] !== distinct[distinct.length - 1]) {
      distinct.push(values[i])
      start.push(k)
    }
    sortedOwners[k] = owners[i]
    masses[k] = images[owners[i]].pixels / images[owners[i]].atoms.length
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
    const x = r === atoms.length || (g < distinct.length && distinct[g] <= atoms[r]) ? distinct[g] : atoms[r]
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
    const length = j + 1 < pieces ? breakpoints[j + 1] - breakpoints[j] : 0
    prefixLength[j + 1] = prefixLength[j] + length
    prefixGammaLength[j + 1] = prefixGammaLength[j] + gammas[j] * length
  }
  const pieceStart = new Int32Array(distinct.length + 2)
  let j = 0
  for (let k = 0; k < distinct.length; k++) {
    while (breakpoints[j] < distinct[k]) j++
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

/** Wasserstein-1 (area between the CDFs) and KS (largest gap) of the weighted images' pooled values against the reference. */
const cdfDistances = (layout: CdfLayout, weights: Float64Array, generatedTotal: number) => {
  const { gamma, masses, owners, pieceStart, prefixGammaLength, prefixLength, start, values } = layout
  let area = 0
  let ks = 0
  let generated = 0
  for (let s = 0; s <= values.length; s++) {
    if (s > 0) for (let c = start[s - 1]; c < start[s]; c++) generated += weights[owners[c]] * masses[c]
    const first = pieceStart[s]
    const end = pieceStart[s + 1]
    if (first === end) continue
    const f = generated / generatedTotal
    let lo = first
    let hi = end
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (gamma[mid] < f) lo = mid + 1
      else hi = mid
    }
    area += f * (prefixLength[lo] - prefixLength[first]) - (prefixGammaLength[lo] - prefixGammaLength[first]) +
      (prefixGammaLength[end] - prefixGammaLength[lo]) - f * (prefixLength[end] - prefixLength[lo])
    const gap = Math.max(Math.abs(f - gamma[first]), Math.abs(f - gamma[end - 1]))
    if (gap > ks) ks = gap
  }
  return { wasserstein: area, ks }
}

/** What FID_CLIP, KID_CLIP and CMMD need of the embeddings, computed once per space. */
interface EmbeddingTerms {
  readonly dim: number
  /** Generated embeddings as float64, row-major. */
  readonly x: Float64Array
  readonly referenceMean: Float64Array
  readonly referenceCovariance: Float64Array
  readonly referenceTrace: number
  /** x Σy xᵀ, for the trace term in the space of the images when there are fewer images than dimensions. */
  readonly projected: Float64Array
  /** Σy^½, for the trace term in the space of the dimensions otherwise. */
  readonly referenceRoot: () => Float64Array
  readonly polynomial: Float64Array
  readonly polynomialToReference: Float64Array
  readonly polynomialReference: number
  readonly gaussian: Float64Array
  readonly gaussianToReference: Float64Array
  readonly gaussianReference: number
}

const embeddingTerms = (images: ReadonlyArray<ImageEvidence>, reference: NonNullable<EvaluationEvidence["reference"]["embeddings"]>): EmbeddingTerms => {
  const n = images.length
  const { count: m, data: y, dim } = reference
  const x32 = new Float32Array(n * dim)
  images.forEach((image, i) => x32.set(image.embedding!, i * dim))
  const x = Float64Array.from(x32)
  const { cov, mean: referenceMean } = meanAndCovariance({ name: "reference", count: m, dim, data: y })
  let referenceTrace = 0
  for (let k = 0; k < dim; k++) referenceTrace += cov[k * dim + k]
  // x Σy xᵀ through xΣy (n × dim).
  const xs = new Float64Array(n * dim)
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < dim; k++) {
      const xik = x[i * dim + k]
      if (xik === 0) continue
      for (let j = 0; j < dim; j++) xs[i * dim + j] += xik * cov[k * dim + j]
    }
  }
  const projected = new Float64Array(n * n)
  for (let a = 0; a < n; a++) {
    for (let b = a; b < n; b++) {
      let s = 0
      for (let k = 0; k < dim; k++) s += xs[a * dim + k] * x[b * dim + k]
      projected[a * n + b] = s
      projected[b * n + a] = s
    }
  }
  let root: Float64Array | undefined
  const referenceRoot = () => {
    if (root !== undefined) return root
    const { values, vectors } = symmetricEigen(Float64Array.from(cov), dim)
    root = new Float64Array(dim * dim)
    for (let i = 0; i < dim; i++) {
      for (let j = 0; j < dim; j++) {
        let s = 0
        for (let k = 0; k < dim; k++) s += vectors[i * dim + k] * Math.sqrt(Math.max(values[k], 0)) * vectors[j * dim + k]
        root[i * dim + j] = s
      }
    }
    return root
  }
  const pairwise = (kernel: typeof polynomialKernel) => {
    const within = new Float64Array(n * n)
    for (let a = 0; a < n; a++) for (let b = a; b < n; b++) within[a * n + b] = within[b * n + a] = kernel(x32, a, x32, b, dim)
    const toReference = new Float64Array(n)
    for (let a = 0; a < n; a++) for (let j = 0; j < m; j++) toReference[a] += kernel(x32, a, y, j, dim)
    return { within, toReference }
  }
  const polynomial = pairwise(polynomialKernel)
  const gaussian = pairwise(gaussianKernel)
  let polynomialReference = 0
  let gaussianReference = 0
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      gaussianReference += gaussianKernel(y, i, y, j, dim)
      if (j > i) polynomialReference += polynomialKernel(y, i, y, j, dim)
    }
  }
  return {
    dim,
    x,
    referenceMean,
    referenceCovariance: cov,
    referenceTrace,
    projected,
    referenceRoot,
    polynomial: polynomial.within,
    polynomialToReference: polynomial.toReference,
    polynomialReference: (2 * polynomialReference) / (m * (m - 1)),
    gaussian: gaussian.within,
    gaussianToReference: gaussian.toReference,
    gaussianReference: gaussianReference / (m * m)
  }
}

/** FID_CLIP, KID_CLIP and CMMD of the multiset in which image a appears weights[a] times. */
const embeddingDistances = (terms: EmbeddingTerms, weights: Float64Array, referenceCount: number) => {
  const { dim, x } = terms
  const active: Array<number> = []
  let total = 0
  for (let a = 0; a < weights.length; a++) {
    if (weights[a] > 0) {
      active.push(a)
      total += weights[a]
    }
  }
  const n = weights.length
  const mu = new Float64Array(dim)
  for (const a of active) for (let k = 0; k < dim; k++) mu[k] += (weights[a] / total) * x[a * dim + k]
  let meanTerm = 0
  for (let k = 0; k < dim; k++) meanTerm += (mu[k] - terms.referenceMean[k]) ** 2
  let trace = 0
  for (const a of active) for (let k = 0; k < dim; k++) trace += weights[a] * (x[a * dim + k] - mu[k]) ** 2
  trace /= total - 1
  // tr √(Σx Σy): the eigenvalues of Σy^½ Σx Σy^½, or of the same product in the images' space.
  let eigenvalues: Float64Array
  if (active.length <= dim) {
    const p = terms.projected
    const u = new Float64Array(active.length)
    active.forEach((a, i) => {
      for (const b of active) u[i] += p[a * n + b] * (weights[b] / total)
    })
    let c = 0
    active.forEach((a, i) => (c += (weights[a] / total) * u[i]))
    const k = active.length
    const gram = new Float64Array(k * k)
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        const a = active[i]
        const b = active[j]
        gram[i * k + j] = (Math.sqrt(weights[a] * weights[b]) * (p[a * n + b] - u[i] - u[j] + c)) / (total - 1)
      }
    }
    eigenvalues = symmetricEigenvalues(gram, k)
  } else {
    const covariance = new Float64Array(dim * dim)
    for (const a of active) {
      for (let i = 0; i < dim; i++) {
        const di = weights[a] * (x[a * dim + i] - mu[i])
        for (let j = i; j < dim; j++) covariance[i * dim + j] += di * (x[a * dim + j] - mu[j])
      }
    }
    for (let i = 0; i < dim; i++) for (let j = i; j < dim; j++) covariance[j * dim + i] = covariance[i * dim + j] /= total - 1
    const root = terms.referenceRoot()
    const left = new Float64Array(dim * dim)
    for (let i = 0; i < dim; i++) for (let k = 0; k < dim; k++) for (let j = 0; j < dim; j++) left[i * dim + j] += root[i * dim + k] * covariance[k * dim + j]
    const middle = new Float64Array(dim * dim)
    for (let i = 0; i < dim; i++) {
      for (let j = i; j < dim; j++) {
        let s = 0
        for (let k = 0; k < dim; k++) s += left[i * dim + k] * root[k * dim + j]
        middle[i * dim + j] = middle[j * dim + i] = s
      }
    }
    eigenvalues = symmetricEigenvalues(middle, dim)
  }
  let traceRoot = 0
  for (const lambda of eigenvalues) traceRoot += Math.sqrt(Math.max(lambda, 0))
  const fid = meanTerm + trace + terms.referenceTrace - 2 * traceRoot

  let polynomialWithin = 0
  let gaussianWithin = 0
  let polynomialCross = 0
  let gaussianCross = 0
  for (const a of active) {
    for (const b of active) {
      const w = weights[a] * weights[b]
      polynomialWithin += w * terms.polynomial[a * n + b]
      gaussianWithin += w * terms.gaussian[a * n + b]
    }
    // The unbiased within-set sum leaves out each copy's kernel with itself.
    polynomialWithin -= weights[a] * terms.polynomial[a * n + a]
    polynomialCross += weights[a] * terms.polynomialToReference[a]
    gaussianCross += weights[a] * terms.gaussianToReference[a]
  }
  const kid = polynomialWithin / (total * (total - 1)) + terms.polynomialReference - (2 * polynomialCross) / (total * referenceCount)
  const cmmd = CMMD_SCALE * (gaussianWithin / (total * total) + terms.gaussianReference - (2 * gaussianCross) / (total * referenceCount))
  return { fid, kid, cmmd }
}

const isScored = (images: ReadonlyArray<ImageEvidence>) => images.length > 0 && images.every((i) => i.clip !== undefined)

const promptIndicesOf = (images: ReadonlyArray<ImageEvidence>) => [...new Set(images.map((i) => i.promptIndex))].sort((a, b) => a - b)

const isEmbedded = (evidence: EvaluationEvidence, images: ReadonlyArray<ImageEvidence>) =>
  images.length >= 2 && images.every((i) => i.embedding !== undefined) && (evidence.reference.embeddings?.count ?? 0) >= 2

/** What an evaluation estimates, in the order EstimateSpace.estimates returns it. */
export const estimateDefinitions = (evidence: EvaluationEvidence, images: ReadonlyArray<ImageEvidence> = evidence.images): ReadonlyArray<EstimateDefinition> => {
  const reference = evidence.reference
  const perProperty = reference.glcm.length / GLCM_PROPERTIES.length
  const definitions: Array<EstimateDefinition> = [
    ...[evaluationMetrics.wasserstein, evaluationMetrics.ks, evaluationMetrics.kl, evaluationMetrics.js, evaluationMetrics.hellinger, evaluationMetrics.bhattacharyya],
    evaluationMetrics.glcmCanberra,
    ...STATISTIC_NAMES.map((name) => ({ ...statisticEstimate(name), reference: reference.statistics[name] })),
    ...GLCM_ESTIMATES.map((definition, p) => ({ ...definition, reference: mean(reference.glcm.subarray(p * perProperty, (p + 1) * perProperty)) }))
  ]
  if (isScored(images)) {
    for (const split of ["seen", "unseen"] as const) {
      if (images.some((i) => i.split === split)) definitions.push(split === "seen" ? evaluationMetrics.clipSeen : evaluationMetrics.clipUnseen)
    }
    definitions.push(...promptIndicesOf(images).map(promptAlignmentEstimate))
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
      const w = weights[i]
      if (w === 0) return
      pixels += w * image.pixels
      total += w
      for (let k = 0; k < histogram.length; k++) histogram[k] += w * image.histogram[k]
      for (let k = 0; k < glcm.length; k++) glcm[k] += w * image.glcm[k]
    })
    if (total === 0) return new Float64Array(this.definitions.length).fill(NaN)
    const { ks, wasserstein } = cdfDistances(this.cdf, weights, pixels)
    let generatedCounts = 0
    let referenceCounts = 0
    for (let k = 0; k < histogram.length; k++) {
      generatedCounts += histogram[k]
      referenceCounts += reference.histogram[k]
    }
    const histogramPart = histogramDistances(histogram, reference.histogram, generatedCounts, referenceCounts, settings.klPseudoCount)
    out.push(wasserstein, ks, histogramPart.kl, histogramPart.js, histogramPart.hellinger, histogramPart.bhattacharyya)
    for (let k = 0; k < glcm.length; k++) glcm[k] /= total
    let canberra = 0
    for (let k = 0; k < glcm.length; k++) {
      const denominator = Math.abs(glcm[k]) + Math.abs(reference.glcm[k])
      if (denominator > 0) canberra += Math.abs(glcm[k] - reference.glcm[k]) / denominator
    }
    out.push(canberra)
    for (const name of STATISTIC_NAMES) {
      let sum = 0
      let weight = 0
      images.forEach((image, i) => {
        const v = image.statistics[name]
        if (weights[i] > 0 && Number.isFinite(v)) {
          sum += weights[i] * v
          weight += weights[i]
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
          if (weights[i] > 0 && include(image)) {
            sum += weights[i] * image.clip!
            weight += weights[i]
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
      const w = weights[i]
      if (w === 0) return
      pixels += w * image.pixels
      for (let k = 0; k < density.length; k++) density[k] += w * image.histogram[k]
    })
    for (let k = 0; k < density.length; k++) density[k] /= pixels
    const quantiles = new Float64Array(probabilities.length)
    const { masses, owners, start, values } = this.cdf
    let cumulative = 0
    let q = 0
    for (let k = 0; k < values.length && q < probabilities.length; k++) {
      for (let c = start[k]; c < start[k + 1]; c++) cumulative += weights[owners[c]] * masses[c]
      while (q < probabilities.length && cumulative > Math.min(pixels - 1, Math.round(probabilities[q] * (pixels - 1)))) quantiles[q++] = values[k]
    }
    for (; q < probabilities.length; q++) quantiles[q] = values[values.length - 1]
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
