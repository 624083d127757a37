import * as tf from "@tensorflow/tfjs-core"
import { activation } from "./activations.ts"
import { scaledDotProductAttention } from "./attention.ts"
import { linearSpecs, normSpecs, type Layers, type ParameterSpec } from "./layers.ts"
import { layerNorm } from "./normalization.ts"

/**
 * transformers' CLIPEncoder: pre-norm transformer layers (`layers.{n}.{layer_norm1, self_attn.{q,k,v,out}_proj,
 * layer_norm2, mlp.fc1, mlp.fc2}`), the same in CLIP's image and text towers; the text tower adds a
 * causal mask.
 */

export interface ClipEncoderSizes {
  readonly hidden_size: number
  readonly intermediate_size: number
  readonly num_hidden_layers: number
  readonly num_attention_heads: number
  readonly hidden_act: "quick_gelu" | "gelu"
  readonly layer_norm_eps: number
}

/** The parameters of `<prefix>.layers.{n}` for every layer. */
export const clipEncoderSpecs = (prefix: string, c: ClipEncoderSizes): Array<ParameterSpec> => {
  const h = c.hidden_size
  return Array.from({ length: c.num_hidden_layers }, (_, i) => {
    const m = `${prefix}.layers.${i}`
    return [
      ...["q_proj", "k_proj", "v_proj", "out_proj"].flatMap((p) => linearSpecs(`${m}.self_attn.${p}`, h, h)),
      ...normSpecs(`${m}.layer_norm1`, h),
      ...linearSpecs(`${m}.mlp.fc1`, h, c.intermediate_size),
      ...linearSpecs(`${m}.mlp.fc2`, c.intermediate_size, h),
      ...normSpecs(`${m}.layer_norm2`, h)
    ]
  }).flat()
}

/** Layer `m` (`<prefix>.layers.{n}`) applied to the hidden state `h` [B, T, hidden]. */
export const clipEncoderLayer = (layers: Layers, m: string, c: ClipEncoderSizes, h: tf.Tensor3D, mask?: tf.Tensor2D): tf.Tensor3D => {
  const normed = layerNorm(layers, `${m}.layer_norm1`, h, c.layer_norm_eps)
  const q = layers.linear(`${m}.self_attn.q_proj`, normed) as tf.Tensor3D
  const k = layers.linear(`${m}.self_attn.k_proj`, normed) as tf.Tensor3D
  const v = layers.linear(`${m}.self_attn.v_proj`, normed) as tf.Tensor3D
  const attended = tf.add(h, layers.linear(`${m}.self_attn.out_proj`, scaledDotProductAttention(q, k, v, c.num_attention_heads, mask))) as tf.Tensor3D
  const hidden = activation(c.hidden_act)(layers.linear(`${m}.mlp.fc1`, layerNorm(layers, `${m}.layer_norm2`, attended, c.layer_norm_eps)))
  return tf.add(attended, layers.linear(`${m}.mlp.fc2`, hidden))
}

/** The encoder's last hidden state for `x` [B, T, hidden]; `mask` [T, T] is added to the attention scores. */
export const clipEncoder = (layers: Layers, prefix: string, c: ClipEncoderSizes, x: tf.Tensor3D, mask?: tf.Tensor2D): tf.Tensor3D => {
  let h = x
  for (let i = 0; i < c.num_hidden_layers; i++) h = clipEncoderLayer(layers, `${prefix}.layers.${i}`, c, h, mask)
  return h
}
