import { CMMD_SCALE, gaussianKernel, meanAndCovariance, polynomialKernel } from "./embedding-distances.ts"
import type { EvaluationEvidence, ImageEvidence } from "./evaluation-evidence.ts"
import { symmetricEigen, symmetricEigenvalues } from "./symmetric-eigen.ts"

/** What FID_CLIP, KID_CLIP and CMMD need of the embeddings, computed once per space. */
export interface EmbeddingTerms {
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

export const embeddingTerms = (images: ReadonlyArray<ImageEvidence>, reference: NonNullable<EvaluationEvidence["reference"]["embeddings"]>): EmbeddingTerms => {
  const n = images.length
  const { count: m, data: y, dim } = reference
  const x32 = new Float32Array(n * dim)
  images.forEach((image, i) => x32.set(image.embedding!, i * dim))
  const x = Float64Array.from(x32)
  const { cov, mean: referenceMean } = meanAndCovariance({ name: "reference", count: m, dim, data: y })
  let referenceTrace = 0
  for (let k = 0; k < dim; k++) referenceTrace += cov[k * dim + k]!
  // x Σy xᵀ through xΣy (n × dim).
  const xs = new Float64Array(n * dim)
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < dim; k++) {
      const xik = x[i * dim + k]!
      if (xik === 0) continue
      for (let j = 0; j < dim; j++) xs[i * dim + j]! += xik * cov[k * dim + j]!
    }
  }
  const projected = new Float64Array(n * n)
  for (let a = 0; a < n; a++) {
    for (let b = a; b < n; b++) {
      let s = 0
      for (let k = 0; k < dim; k++) s += xs[a * dim + k]! * x[b * dim + k]!
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
        for (let k = 0; k < dim; k++) s += vectors[i * dim + k]! * Math.sqrt(Math.max(values[k]!, 0)) * vectors[j * dim + k]!
        root[i * dim + j] = s
      }
    }
    return root
  }
  const pairwise = (kernel: typeof polynomialKernel) => {
    const within = new Float64Array(n * n)
    for (let a = 0; a < n; a++) for (let b = a; b < n; b++) within[a * n + b] = within[b * n + a] = kernel(x32, a, x32, b, dim)
    const toReference = new Float64Array(n)
    for (let a = 0; a < n; a++) for (let j = 0; j < m; j++) toReference[a]! += kernel(x32, a, y, j, dim)
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
export const embeddingDistances = (terms: EmbeddingTerms, weights: Float64Array, referenceCount: number) => {
  const { dim, x } = terms
  const active: Array<number> = []
  let total = 0
  for (let a = 0; a < weights.length; a++) {
    if (weights[a]! > 0) {
      active.push(a)
      total += weights[a]!
    }
  }
  const n = weights.length
  const mu = new Float64Array(dim)
  for (const a of active) for (let k = 0; k < dim; k++) mu[k]! += (weights[a]! / total) * x[a * dim + k]!
  let meanTerm = 0
  for (let k = 0; k < dim; k++) meanTerm += (mu[k]! - terms.referenceMean[k]!) ** 2
  let trace = 0
  for (const a of active) for (let k = 0; k < dim; k++) trace += weights[a]! * (x[a * dim + k]! - mu[k]!) ** 2
  trace /= total - 1
  // tr √(Σx Σy): the eigenvalues of Σy^½ Σx Σy^½, or of the same product in the images' space.
  let eigenvalues: Float64Array
  if (active.length <= dim) {
    const p = terms.projected
    const u = new Float64Array(active.length)
    active.forEach((a, i) => {
      for (const b of active) u[i]! += p[a * n + b]! * (weights[b]! / total)
    })
    let c = 0
    active.forEach((a, i) => (c += (weights[a]! / total) * u[i]!))
    const k = active.length
    const gram = new Float64Array(k * k)
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        const a = active[i]!
        const b = active[j]!
        gram[i * k + j] = (Math.sqrt(weights[a]! * weights[b]!) * (p[a * n + b]! - u[i]! - u[j]! + c)) / (total - 1)
      }
    }
    eigenvalues = symmetricEigenvalues(gram, k)
  } else {
    const covariance = new Float64Array(dim * dim)
    for (const a of active) {
      for (let i = 0; i < dim; i++) {
        const di = weights[a]! * (x[a * dim + i]! - mu[i]!)
        for (let j = i; j < dim; j++) covariance[i * dim + j]! += di * (x[a * dim + j]! - mu[j]!)
      }
    }
    for (let i = 0; i < dim; i++) for (let j = i; j < dim; j++) covariance[j * dim + i] = covariance[i * dim + j]! /= total - 1
    const root = terms.referenceRoot()
    const left = new Float64Array(dim * dim)
    for (let i = 0; i < dim; i++) {
      for (let k = 0; k < dim; k++) for (let j = 0; j < dim; j++) left[i * dim + j]! += root[i * dim + k]! * covariance[k * dim + j]!
    }
    const middle = new Float64Array(dim * dim)
    for (let i = 0; i < dim; i++) {
      for (let j = i; j < dim; j++) {
        let s = 0
        for (let k = 0; k < dim; k++) s += left[i * dim + k]! * root[k * dim + j]!
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
      const w = weights[a]! * weights[b]!
      polynomialWithin += w * terms.polynomial[a * n + b]!
      gaussianWithin += w * terms.gaussian[a * n + b]!
    }
    // The unbiased within-set sum leaves out each copy's kernel with itself.
    polynomialWithin -= weights[a]! * terms.polynomial[a * n + a]!
    polynomialCross += weights[a]! * terms.polynomialToReference[a]!
    gaussianCross += weights[a]! * terms.gaussianToReference[a]!
  }
  const kid = polynomialWithin / (total * (total - 1)) + terms.polynomialReference - (2 * polynomialCross) / (total * referenceCount)
  const cmmd = CMMD_SCALE * (gaussianWithin / (total * total) + terms.gaussianReference - (2 * gaussianCross) / (total * referenceCount))
  return { fid, kid, cmmd }
}
