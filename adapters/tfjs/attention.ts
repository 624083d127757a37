import * as tf from "@tensorflow/tfjs-core"
import { linearSpecs, type Layers, type ParameterSpec } from "./layers.ts"

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
  const scores = tf.matMul(split(tf.mul(q, 1 / Math.sqrt(headDim)), queries), split(k, keys), false, true)
  const weights = tf.softmax(mask === undefined ? scores : tf.add(scores, mask))
  const out = tf.matMul(weights, split(v, keys))
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
