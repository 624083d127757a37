import { Effect } from "effect"
import { MetricInputError } from "./metric-input.ts"
import { symmetricEigen, symmetricEigenvalues } from "./symmetric-eigen.ts"

/** `count` embeddings of `dim` values each, row-major; `name` is what errors print. */
export interface Embeddings {
  readonly name: string
  readonly count: number
  readonly dim: number
  readonly data: Float32Array
}

const checkPair = (x: Embeddings, y: Embeddings, minCount: number): Effect.Effect<void, MetricInputError> => {
  for (const set of [x, y]) {
    const fail = (reason: string) => Effect.fail(new MetricInputError({ input: set.name, reason }))
    if (set.data.length !== set.count * set.dim) {
      return fail(`has ${set.data.length} values, but ${set.count} × ${set.dim} were expected`)
    }
    if (set.count < minCount) return fail(`has ${set.count} embeddings; at least ${minCount} are needed`)
    for (let i = 0; i < set.data.length; i++) {
      if (!Number.isFinite(set.data[i])) {
        return fail(`value ${set.data[i]} of embedding ${Math.floor(i / set.dim)} is not a finite number`)
      }
    }
  }
  if (x.dim !== y.dim) {
    return Effect.fail(
      new MetricInputError({ input: `${x.name} / ${y.name}`, reason: `embedding sizes differ: ${x.dim} and ${y.dim}` })
    )
  }
  return Effect.void
}

/** Mean and unbiased covariance (divide by n − 1, as numpy.cov). */
export const meanAndCovariance = ({ count, dim, data }: Embeddings) => {
  const mean = new Float64Array(dim)
  for (let s = 0; s < count; s++) for (let k = 0; k < dim; k++) mean[k]! += data[s * dim + k]!
  for (let k = 0; k < dim; k++) mean[k]! /= count
  const centred = new Float64Array(count * dim)
  for (let s = 0; s < count; s++) for (let k = 0; k < dim; k++) centred[s * dim + k] = data[s * dim + k]! - mean[k]!
  const cov = new Float64Array(dim * dim)
  for (let s = 0; s < count; s++) {
    const row = s * dim
    for (let i = 0; i < dim; i++) {
      const ci = centred[row + i]!
      if (ci === 0) continue
      const out = i * dim
      for (let j = i; j < dim; j++) cov[out + j]! += ci * centred[row + j]!
    }
  }
  for (let i = 0; i < dim; i++) {
    for (let j = i; j < dim; j++) {
      const v = cov[i * dim + j]! / (count - 1)
      cov[i * dim + j] = v
      cov[j * dim + i] = v
    }
  }
  return { mean, cov }
}

/** C = A·B for n × n row-major matrices. */
const multiply = (a: Float64Array, b: Float64Array, n: number) => {
  const c = new Float64Array(n * n)
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!
      if (aik === 0) continue
      const bRow = k * n
      const cRow = i * n
      for (let j = 0; j < n; j++) c[cRow + j]! += aik * b[bRow + j]!
    }
  }
  return c
}

/**
 * Fréchet distance between Gaussians fitted to two embedding sets (FID's formula; on the CLIP
 * model's image embeddings here, FID_CLIP):
 * ‖μx − μy‖² + tr Σx + tr Σy − 2 tr (Σx^½ Σy Σx^½)^½. The square root is taken of a symmetric
 * positive semi-definite matrix through its eigendecomposition (negative rounding residue is
 * clipped to 0), which equals tr √(Σx Σy) of pytorch-fid without its complex detour.
 */
export const frechetDistance = (x: Embeddings, y: Embeddings): Effect.Effect<number, MetricInputError> =>
  Effect.gen(function*() {
    yield* checkPair(x, y, 2)
    const n = x.dim
    const fx = meanAndCovariance(x)
    const fy = meanAndCovariance(y)
    let meanTerm = 0
    let traces = 0
    for (let k = 0; k < n; k++) {
      const d = fx.mean[k]! - fy.mean[k]!
      meanTerm += d * d
      traces += fx.cov[k * n + k]! + fy.cov[k * n + k]!
    }
    const { values, vectors } = symmetricEigen(fx.cov, n)
    // Σx^½ = V diag(√λ) Vᵀ
    const scaled = new Float64Array(n * n)
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < n; k++) scaled[i * n + k] = vectors[i * n + k]! * Math.sqrt(Math.max(values[k]!, 0))
    }
    const root = new Float64Array(n * n)
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        let s = 0
        for (let k = 0; k < n; k++) s += scaled[i * n + k]! * vectors[j * n + k]!
        root[i * n + j] = s
        root[j * n + i] = s
      }
    }
    const middle = multiply(multiply(root, fy.cov, n), root, n)
    // Symmetrise away the rounding asymmetry of the two products.
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const s = 0.5 * (middle[i * n + j]! + middle[j * n + i]!)
        middle[i * n + j] = s
        middle[j * n + i] = s
      }
    }
    let traceRoot = 0
    for (const lambda of symmetricEigenvalues(middle, n)) traceRoot += Math.sqrt(Math.max(lambda, 0))
    return meanTerm + traces - 2 * traceRoot
  })

const dot = (a: Float32Array, i: number, b: Float32Array, j: number, dim: number) => {
  let s = 0
  for (let k = 0; k < dim; k++) s += a[i * dim + k]! * b[j * dim + k]!
  return s
}

/** KID's polynomial kernel k(a, b) = (aᵀb / dim + 1)³ between row i of `a` and row j of `b`. */
export const polynomialKernel = (a: Float32Array, i: number, b: Float32Array, j: number, dim: number) => (dot(a, i, b, j, dim) / dim + 1) ** 3

export const CMMD_SIGMA = 10
export const CMMD_SCALE = 1000

/** CMMD's Gaussian RBF kernel exp(−‖a − b‖² / (2σ²)), σ = 10, between row i of `a` and row j of `b`. */
export const gaussianKernel = (a: Float32Array, i: number, b: Float32Array, j: number, dim: number) => {
  let d2 = 0
  for (let k = 0; k < dim; k++) {
    const d = a[i * dim + k]! - b[j * dim + k]!
    d2 += d * d
  }
  return Math.exp(-d2 / (2 * CMMD_SIGMA * CMMD_SIGMA))
}

/**
 * The kernel distance of Bińkowski et al. (2018) — "KID" when the embeddings are Inception's; here
 * they are the declared CLIP model's (KID_CLIP): the unbiased estimate of MMD² with the polynomial
 * kernel, over the whole sets (no random subsets, so no seed is involved).
 */
export const kernelDistance = (x: Embeddings, y: Embeddings): Effect.Effect<number, MetricInputError> =>
  Effect.gen(function*() {
    yield* checkPair(x, y, 2)
    const dim = x.dim
    const within = (set: Embeddings) => {
      let s = 0
      for (let i = 0; i < set.count; i++) for (let j = i + 1; j < set.count; j++) s += polynomialKernel(set.data, i, set.data, j, dim)
      return (2 * s) / (set.count * (set.count - 1))
    }
    let cross = 0
    for (let i = 0; i < x.count; i++) for (let j = 0; j < y.count; j++) cross += polynomialKernel(x.data, i, y.data, j, dim)
    return within(x) + within(y) - (2 * cross) / (x.count * y.count)
  })

/**
 * CMMD (Jayasumana et al., 2024): MMD with the Gaussian RBF kernel, σ = 10, in the paper's
 * (biased, diagonal included) form, times 1000. Its embeddings are unit-normalised CLIP image
 * embeddings.
 */
export const cmmd = (x: Embeddings, y: Embeddings): Effect.Effect<number, MetricInputError> =>
  Effect.gen(function*() {
    yield* checkPair(x, y, 1)
    const dim = x.dim
    const meanKernel = (a: Embeddings, b: Embeddings) => {
      let s = 0
      for (let i = 0; i < a.count; i++) for (let j = 0; j < b.count; j++) s += gaussianKernel(a.data, i, b.data, j, dim)
      return s / (a.count * b.count)
    }
    return CMMD_SCALE * (meanKernel(x, x) + meanKernel(y, y) - 2 * meanKernel(x, y))
  })

/**
 * CLIP prompt alignment of paired embeddings: 100 · cos(image_k, text_k) for each k, the score
 * of a generated image against the prompt it was generated from.
 */
export const clipAlignment = (images: Embeddings, texts: Embeddings): Effect.Effect<Float64Array, MetricInputError> =>
  Effect.gen(function*() {
    yield* checkPair(images, texts, 1)
    if (images.count !== texts.count) {
      return yield* new MetricInputError({
        input: `${images.name} / ${texts.name}`,
        reason: `${images.count} images and ${texts.count} texts cannot be paired`
      })
    }
    const dim = images.dim
    const scores = new Float64Array(images.count)
    for (let k = 0; k < images.count; k++) {
      const ii = dot(images.data, k, images.data, k, dim)
      const tt = dot(texts.data, k, texts.data, k, dim)
      if (ii === 0 || tt === 0) {
        return yield* new MetricInputError({ input: ii === 0 ? images.name : texts.name, reason: `embedding ${k} has length 0` })
      }
      scores[k] = (100 * dot(images.data, k, texts.data, k, dim)) / Math.sqrt(ii * tt)
    }
    return scores
  })
