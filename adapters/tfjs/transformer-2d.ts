import * as tf from "@tensorflow/tfjs-core"
import { gelu } from "./activations.ts"
import { attention, attentionSpecs } from "./attention.ts"
import { convSpecs, linearSpecs, normSpecs, type Layers, type ParameterSpec } from "./layers.ts"
import { groupNorm, layerNorm } from "./normalization.ts"

/** diffusers' Transformer2DModel on continuous inputs, as the cross-attention UNet blocks build it. */
export interface Transformer2D {
  readonly channels: number
  readonly heads: number
  readonly headDim: number
  /** Number of BasicTransformerBlocks (`transformer_layers_per_block`). */
  readonly depth: number
  readonly contextDim: number
  readonly groups: number
  /** Linear proj_in / proj_out (SD 2.x, SDXL) instead of 1×1 convolutions (SD 1.x). */
  readonly linearProjection: boolean
}

/** Transformer2DModel's GroupNorm eps and BasicTransformerBlock's LayerNorm eps (diffusers' fixed defaults). */
const GROUP_NORM_EPS = 1e-6
const LAYER_NORM_EPS = 1e-5
/** The GEGLU feed-forward widens by 4. */
const FF_MULT = 4

const blockSpecs = (module: string, t: Transformer2D): Array<ParameterSpec> => {
  const dim = t.heads * t.headDim
  const inner = dim * FF_MULT
  return [
    ...normSpecs(`${module}.norm1`, dim),
    ...attentionSpecs(`${module}.attn1`, dim, dim, dim, false),
    ...normSpecs(`${module}.norm2`, dim),
    ...attentionSpecs(`${module}.attn2`, dim, t.contextDim, dim, false),
    ...normSpecs(`${module}.norm3`, dim),
    ...linearSpecs(`${module}.ff.net.0.proj`, dim, inner * 2),
    ...linearSpecs(`${module}.ff.net.2`, inner, dim)
  ]
}

export const transformer2dSpecs = (module: string, t: Transformer2D): Array<ParameterSpec> => {
  const inner = t.heads * t.headDim
  const projection = (name: string, from: number, to: number) =>
    t.linearProjection ? linearSpecs(`${module}.${name}`, from, to) : convSpecs(`${module}.${name}`, from, to, 1)
  return [
    ...normSpecs(`${module}.norm`, t.channels),
    ...projection("proj_in", t.channels, inner),
    ...Array.from({ length: t.depth }, (_, k) => blockSpecs(`${module}.transformer_blocks.${k}`, t)).flat(),
    ...projection("proj_out", inner, t.channels)
  ]
}

/** GEGLU feed-forward: proj to 2·inner, value · gelu(gate), back to dim. */
const feedForward = (layers: Layers, module: string, x: tf.Tensor3D): tf.Tensor3D => {
  const projected = layers.linear(`${module}.net.0.proj`, x) as tf.Tensor3D
  const [value, gate] = tf.split(projected, 2, -1) as [tf.Tensor3D, tf.Tensor3D]
  return layers.linear(`${module}.net.2`, tf.mul(value, gelu(gate))) as tf.Tensor3D
}

/** BasicTransformerBlock: self-attention, cross-attention over the text, feed-forward; each pre-normed and residual. */
const basicTransformerBlock = (layers: Layers, module: string, t: Transformer2D, x: tf.Tensor3D, context: tf.Tensor3D): tf.Tensor3D => {
  let h: tf.Tensor3D = tf.add(attention(layers, `${module}.attn1`, layerNorm(layers, `${module}.norm1`, x, LAYER_NORM_EPS), undefined, t.heads), x)
  h = tf.add(attention(layers, `${module}.attn2`, layerNorm(layers, `${module}.norm2`, h, LAYER_NORM_EPS), context, t.heads), h)
  return tf.add(feedForward(layers, `${module}.ff`, layerNorm(layers, `${module}.norm3`, h, LAYER_NORM_EPS)), h)
}

export const transformer2d = (layers: Layers, module: string, t: Transformer2D, x: tf.Tensor4D, context: tf.Tensor3D): tf.Tensor4D => {
  const [batch, height, width, channels] = x.shape
  const inner = t.heads * t.headDim
  const normed = groupNorm(layers, `${module}.norm`, x, t.groups, GROUP_NORM_EPS)
  let h = t.linearProjection
    ? layers.linear(`${module}.proj_in`, tf.reshape(normed, [batch, height * width, channels])) as tf.Tensor3D
    : tf.reshape(layers.conv2d(`${module}.proj_in`, normed, { padding: 0 }), [batch, height * width, inner]) as tf.Tensor3D
  for (let k = 0; k < t.depth; k++) h = basicTransformerBlock(layers, `${module}.transformer_blocks.${k}`, t, h, context)
  const out = t.linearProjection
    ? tf.reshape(layers.linear(`${module}.proj_out`, h), [batch, height, width, channels]) as tf.Tensor4D
    : layers.conv2d(`${module}.proj_out`, tf.reshape(h, [batch, height, width, inner]), { padding: 0 })
  return tf.add(out, x)
}
