import * as tf from "@tensorflow/tfjs-core"
import { registerArrayKernel } from "./array-kernel.ts"

/**
 * Group normalisation with its affine transform, on x seen as [N, S, C] (S positions of C channels,
 * channels split into G consecutive runs), normalised over each sample's S × C/G values of a group:
 * torch's GroupNorm for NHWC activations (S = H·W) and LayerNorm (N = rows, S = 1, G = 1).
 * One kernel forward and one backward instead of the ~20 and ~40 small operations (moments, broadcast
 * arithmetic, their gradients' reductions) that composing it from tfjs operations costs. Sums are
 * accumulated in float64.
 */

const FORWARD = "SardineGroupNorm"
const BACKWARD = "SardineGroupNormGrad"

/** N, S, C and the group width of x [N, S, C] from its arrays' lengths. */
const dims = (x: Float32Array, gamma: Float32Array, stats: Float32Array, groups: number) => {
  const c = gamma.length
  const n = stats.length / groups
  return { n, s: n === 0 ? 0 : x.length / n / c, c, width: c / groups }
}

/** Σ over each group's channels of `perChannel` (channel sums of one sample). */
const groupSums = (perChannel: Float64Array, groups: number, width: number, out: Float64Array): void => {
  for (let g = 0, ch = 0; g < groups; g++) {
    let acc = 0
    for (let j = 0; j < width; j++, ch++) acc += perChannel[ch]!
    out[g] = acc
  }
}

/** Spreads one value per group to its channels. */
const perChannel = (perGroup: ArrayLike<number>, offset: number, groups: number, width: number, out: Float64Array): void => {
  for (let g = 0, ch = 0; g < groups; g++) for (let j = 0; j < width; j++, ch++) out[ch] = perGroup[offset + g]!
}

/** LayerNorm's case (one group, one position per sample): each row on its own, no per-channel sums. */
const normalizeRows = (
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  y: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  rows: number,
  width: number,
  eps: number
): void => {
  for (let r = 0, start = 0; r < rows; r++, start += width) {
    let sum = 0
    for (let i = start; i < start + width; i++) sum += x[i]!
    const m = sum / width
    let squares = 0
    for (let i = start; i < start + width; i++) squares += (x[i]! - m) * (x[i]! - m)
    mean[r] = m
    rstd[r] = 1 / Math.sqrt(squares / width + eps)
    const mf = mean[r]!
    const rf = rstd[r]!
    for (let i = start, ch = 0; ch < width; i++, ch++) y[i] = (x[i]! - mf) * rf * gamma[ch]! + beta[ch]!
  }
}

const rowGradients = (
  dy: Float32Array,
  x: Float32Array,
  gamma: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  dx: Float32Array,
  dgamma: Float32Array,
  dbeta: Float32Array,
  rows: number,
  width: number
): void => {
  const gammaSums = new Float64Array(width)
  const betaSums = new Float64Array(width)
  for (let r = 0, start = 0; r < rows; r++, start += width) {
    const m = mean[r]!
    const rs = rstd[r]!
    let a = 0
    let b = 0
    for (let i = start, ch = 0; ch < width; i++, ch++) {
      const d = dy[i]!
      const xhat = (x[i]! - m) * rs
      gammaSums[ch]! += d * xhat
      betaSums[ch]! += d
      a += d * gamma[ch]!
      b += d * gamma[ch]! * xhat
    }
    a /= width
    b /= width
    for (let i = start, ch = 0; ch < width; i++, ch++) dx[i] = rs * (dy[i]! * gamma[ch]! - a - (x[i]! - m) * rs * b)
  }
  dgamma.set(gammaSums)
  dbeta.set(betaSums)
}

// Loops run over positions, then channels (contiguous in memory), with per-channel accumulators;
// group totals are formed from them afterwards.
registerArrayKernel({
  name: FORWARD,
  inputs: ["x", "gamma", "beta"],
  outputs: ["y", "mean", "rstd"],
  outputShapes: ([x], attrs) => [x.shape, [x.shape[0]!, attrs.groups as number], [x.shape[0]!, attrs.groups as number]],
  compute: ([x, gamma, beta], [y, mean, rstd], attrs) => {
    const groups = attrs.groups as number
    const eps = attrs.eps as number
    const { n, s, c, width } = dims(x, gamma, mean, groups)
    if (s === 1 && groups === 1) return normalizeRows(x, gamma, beta, y, mean, rstd, n, c, eps)
    const count = s * width
    const channelSums = new Float64Array(c)
    const totals = new Float64Array(groups)
    const centre = new Float64Array(c)
    const scale = new Float64Array(c)
    for (let b = 0; b < n; b++) {
      const start = b * s * c
      const end = start + s * c
      channelSums.fill(0)
      for (let i = start; i < end;) for (let ch = 0; ch < c; ch++, i++) channelSums[ch]! += x[i]!
      groupSums(channelSums, groups, width, totals)
      for (let g = 0; g < groups; g++) totals[g]! /= count
      perChannel(totals, 0, groups, width, centre)
      channelSums.fill(0)
      for (let i = start; i < end;) {
        for (let ch = 0; ch < c; ch++, i++) {
          const d = x[i]! - centre[ch]!
          channelSums[ch]! += d * d
        }
      }
      for (let g = 0; g < groups; g++) mean[b * groups + g] = totals[g]!
      groupSums(channelSums, groups, width, totals)
      for (let g = 0; g < groups; g++) rstd[b * groups + g] = 1 / Math.sqrt(totals[g]! / count + eps)
      // y from the float32 statistics the backward pass will read, so both use the same values.
      perChannel(mean, b * groups, groups, width, centre)
      perChannel(rstd, b * groups, groups, width, scale)
      for (let ch = 0; ch < c; ch++) scale[ch]! *= gamma[ch]!
      for (let i = start; i < end;) for (let ch = 0; ch < c; ch++, i++) y[i] = (x[i]! - centre[ch]!) * scale[ch]! + beta[ch]!
    }
  }
})

registerArrayKernel({
  name: BACKWARD,
  inputs: ["dy", "x", "gamma", "mean", "rstd"],
  outputs: ["dx", "dgamma", "dbeta"],
  outputShapes: ([dy, , gamma]) => [dy.shape, gamma.shape, gamma.shape],
  compute: ([dy, x, gamma, mean, rstd], [dx, dgamma, dbeta], attrs) => {
    const groups = attrs.groups as number
    const { n, s, c, width } = dims(x, gamma, mean, groups)
    if (s === 1 && groups === 1) return rowGradients(dy, x, gamma, mean, rstd, dx, dgamma, dbeta, n, c)
    const count = s * width
    const gammaSums = new Float64Array(c)
    const betaSums = new Float64Array(c)
    const dyHat = new Float64Array(c)
    const dySum = new Float64Array(c)
    const centre = new Float64Array(c)
    const scale = new Float64Array(c)
    const a = new Float64Array(groups)
    const bsum = new Float64Array(groups)
    const shiftC = new Float64Array(c)
    const slopeC = new Float64Array(c)
    for (let b = 0; b < n; b++) {
      const start = b * s * c
      const end = start + s * c
      perChannel(mean, b * groups, groups, width, centre)
      perChannel(rstd, b * groups, groups, width, scale)
      dyHat.fill(0)
      dySum.fill(0)
      for (let i = start; i < end;) {
        for (let ch = 0; ch < c; ch++, i++) {
          const d = dy[i]!
          dySum[ch]! += d
          dyHat[ch]! += d * (x[i]! - centre[ch]!) * scale[ch]!
        }
      }
      for (let ch = 0; ch < c; ch++) {
        gammaSums[ch]! += dyHat[ch]!
        betaSums[ch]! += dySum[ch]!
        dySum[ch]! *= gamma[ch]!
        dyHat[ch]! *= gamma[ch]!
      }
      // a = Σ dy·γ and b = Σ dy·γ·x̂ over each group; dx = r·(dy·γ − a/M − x̂·b/M).
      groupSums(dySum, groups, width, a)
      groupSums(dyHat, groups, width, bsum)
      for (let g = 0; g < groups; g++) {
        a[g]! /= count
        bsum[g]! /= count
      }
      perChannel(a, 0, groups, width, shiftC)
      perChannel(bsum, 0, groups, width, slopeC)
      for (let i = start; i < end;) {
        for (let ch = 0; ch < c; ch++, i++) {
          const r = scale[ch]!
          dx[i] = r * (dy[i]! * gamma[ch]! - shiftC[ch]! - (x[i]! - centre[ch]!) * r * slopeC[ch]!)
        }
      }
    }
    dgamma.set(gammaSums)
    dbeta.set(betaSums)
  }
})

/**
 * y = (x − mean) / √(var + eps) · gamma + beta over x [N, S, C] in `groups` channel groups, with its
 * gradient for x, gamma and beta.
 */
export const groupNormalization = (x: tf.Tensor3D, gamma: tf.Tensor, beta: tf.Tensor, groups: number, eps: number): tf.Tensor3D => {
  const normalize = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    // customGrad passes the three tensors given to `normalize` below, then its save function.
    const [input, scale, shift, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc]
    const [y, mean, rstd] = tf.engine().runKernel(FORWARD, { x: input, gamma: scale, beta: shift }, { groups, eps }) as [tf.Tensor, tf.Tensor, tf.Tensor]
    save([input, scale, mean, rstd])
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: Array<tf.Tensor>) => {
        const [sx, sgamma, smean, srstd] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]
        return tf.engine().runKernel(BACKWARD, { dy, x: sx, gamma: sgamma, mean: smean, rstd: srstd }, { groups }) as Array<tf.Tensor>
      }
    }
  })
  return normalize(x, tf.reshape(gamma, [-1]), tf.reshape(beta, [-1])) as tf.Tensor3D
}
