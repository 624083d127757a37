import * as tf from "@tensorflow/tfjs-core"
import { linearSpecs, type Layers, type ParameterSpec } from "./layers.ts"

/**
 * At most this many attention weights (floats) exist at once: the queries are processed in chunks of
 * rows so that [B·heads, chunk, keys] stays within it (64 MB), whatever the token count. SD's 64 × 64
 * latents (4 096 tokens) would otherwise need [B·heads, 4 096, 4 096] floats per self-attention.
 */
const WEIGHTS_PER_CHUNK = 1 << 24

const queryChunks = (groups: number, queries: number, keys: number, weightsPerChunk: number): Array<[number, number]> => {
  const rows = Math.max(1, Math.min(queries, Math.floor(weightsPerChunk / Math.max(1, groups * keys))))
  return Array.from({ length: Math.ceil(queries / rows) }, (_, i) => [i * rows, Math.min(rows, queries - i * rows)])
}

const rowsOf = (t: tf.Tensor3D, [start, size]: [number, number]): tf.Tensor3D =>
  size === t.shape[1] ? t : tf.slice(t, [0, start, 0], [t.shape[0], size, t.shape[2]])

/** softmax(q·kᵀ + mask) over the keys, for the query rows of `chunk`. */
const weightsOf = (q: tf.Tensor3D, k: tf.Tensor3D, mask: tf.Tensor2D | undefined, chunk: [number, number]): tf.Tensor3D => {
  const scores = tf.matMul(rowsOf(q, chunk), k, false, true)
  if (mask === undefined) return tf.softmax(scores) as tf.Tensor3D
  const maskRows = chunk[1] === mask.shape[0] ? mask : tf.slice(mask, [chunk[0], 0], [chunk[1], mask.shape[1]])
  return tf.softmax(tf.add(scores, maskRows)) as tf.Tensor3D
}

/** What the forward pass saves: q, k, v, the output, and the attention weights when they fit in one chunk. */
type Saved = readonly [q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, y: tf.Tensor3D, weights?: tf.Tensor3D]

/**
 * softmax(q·kᵀ + mask)·v over [G, T, d] heads (q already scaled), chunk of query rows by chunk.
 * When the attention weights take more than one chunk they are not kept for the backward pass,
 * which recomputes them chunk by chunk (FlashAttention's trade: one more q·kᵀ product for O(T²) less
 * memory); when they fit in one, they are kept. The softmax gradient's row sums Σ_keys dp ⊙ p are
 * taken as Σ_d dy ⊙ y, over [G, T, d] instead of [G, T, T] (FlashAttention-2's D).
 * dk = dsᵀ·q and dv = pᵀ·dy keep the [G, T, T] matrix on the left of the product although it is
 * transposed there: measured on wasm, transposing it costs less than the alternative, dkᵀ = qᵀ·ds,
 * whose [T, T] right-hand side XNNPACK repacks for each head (51–73 ms against 21–24 ms per product
 * for 64 heads of 256 × 256).
 */
export const headsAttention = (
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  mask: tf.Tensor2D | undefined,
  weightsPerChunk = WEIGHTS_PER_CHUNK
): tf.Tensor3D => {
  const [groups, queries] = q.shape
  const chunks = queryChunks(groups, queries, k.shape[1], weightsPerChunk)
  const attend = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    // customGrad passes the three tensors given to `attend` below, then its save function.
    const [qh, kh, vh, save] = args as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.GradSaveFunc]
    if (chunks.length === 1) {
      const weights = weightsOf(qh, kh, mask, chunks[0]!)
      const value = tf.matMul(weights, vh)
      save([qh, kh, vh, value, weights])
      return { value, gradFunc: (dy: tf.Tensor, saved: Array<tf.Tensor>) => gradients(dy as tf.Tensor3D, saved as unknown as Saved) }
    }
    const parts = chunks.map((chunk) => tf.tidy(() => tf.matMul(weightsOf(qh, kh, mask, chunk), vh)))
    const value = tf.concat(parts, 1)
    tf.dispose(parts)
    save([qh, kh, vh, value])
    return { value, gradFunc: (dy: tf.Tensor, saved: Array<tf.Tensor>) => gradients(dy as tf.Tensor3D, saved as unknown as Saved) }
  })
  const gradients = (dout: tf.Tensor3D, [sq, sk, sv, y, kept]: Saved): Array<tf.Tensor> => {
    const rowSums = tf.sum(tf.mul(dout, y), -1, true) as tf.Tensor3D
    const dqs: Array<tf.Tensor> = []
    let dk: tf.Tensor | undefined
    let dv: tf.Tensor | undefined
    for (const chunk of chunks) {
      const [dq, dkPart, dvPart] = tf.tidy((): [tf.Tensor, tf.Tensor, tf.Tensor] => {
        const p = kept ?? weightsOf(sq, sk, mask, chunk)
        const dyRows = rowsOf(dout, chunk)
        // softmax's gradient: ds = p ⊙ (dp − Σ_keys dp ⊙ p)
        const ds = tf.mul(p, tf.sub(tf.matMul(dyRows, sv, false, true), rowsOf(rowSums, chunk)))
        return [tf.matMul(ds, sk), tf.matMul(ds, rowsOf(sq, chunk), true, false), tf.matMul(p, dyRows, true, false)]
      })
      dqs.push(dq)
      const nextK: tf.Tensor = dk === undefined ? dkPart : tf.add(dk, dkPart)
      const nextV: tf.Tensor = dv === undefined ? dvPart : tf.add(dv, dvPart)
      if (dk !== undefined) tf.dispose([dk, dkPart, dv!, dvPart])
      dk = nextK
      dv = nextV
    }
    rowSums.dispose()
    const dq = dqs.length === 1 ? dqs[0]! : tf.concat(dqs, 1)
    if (dqs.length > 1) tf.dispose(dqs)
    return [dq, dk!, dv!]
  }
  return attend(q, k, v) as tf.Tensor3D
}

/**
 * softmax(q·kᵀ/√d + mask)·v over `heads` heads, as torch's scaled_dot_product_attention.
 * q [B, Tq, H·d], k and v [B, Tk, H·d]; `mask` [Tq, Tk] is added to every head's scores.
 */
export const scaledDotProductAttention = (
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  heads: number,
  mask?: tf.Tensor2D
): tf.Tensor3D => {
  const [batch, queries, inner] = q.shape
  const keys = k.shape[1]
  const headDim = inner / heads
  const split = (t: tf.Tensor3D, length: number) =>
    tf.reshape(tf.transpose(tf.reshape(t, [batch, length, heads, headDim]), [0, 2, 1, 3]), [batch * heads, length, headDim]) as tf.Tensor3D
  const out = headsAttention(split(tf.mul(q, 1 / Math.sqrt(headDim)), queries), split(k, keys), split(v, keys), mask)
  return tf.reshape(tf.transpose(tf.reshape(out, [batch, heads, queries, headDim]), [0, 2, 1, 3]), [batch, queries, inner])
}

/**
 * diffusers' `Attention` (to_q, to_k, to_v, to_out.0): self-attention when `context` is absent,
 * cross-attention over `context` otherwise.
 */
export const attention = (layers: Layers, module: string, x: tf.Tensor3D, context: tf.Tensor3D | undefined, heads: number): tf.Tensor3D => {
  const source = context ?? x
  const q = layers.linear(`${module}.to_q`, x) as tf.Tensor3D
  const k = layers.linear(`${module}.to_k`, source) as tf.Tensor3D
  const v = layers.linear(`${module}.to_v`, source) as tf.Tensor3D
  return layers.linear(`${module}.to_out.0`, scaledDotProductAttention(q, k, v, heads)) as tf.Tensor3D
}

export const attentionSpecs = (module: string, queryDim: number, contextDim: number, innerDim: number, qkvBias: boolean): Array<ParameterSpec> => [
  ...linearSpecs(`${module}.to_q`, queryDim, innerDim, qkvBias),
  ...linearSpecs(`${module}.to_k`, contextDim, innerDim, qkvBias),
  ...linearSpecs(`${module}.to_v`, contextDim, innerDim, qkvBias),
  ...linearSpecs(`${module}.to_out.0`, innerDim, queryDim)
]
