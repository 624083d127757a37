import * as tf from "@tensorflow/tfjs-core"
import { Schema } from "effect"
import { clipEncoder, clipEncoderSpecs } from "./clip-encoder.ts"
import { convSpecs, normSpecs, tensorSpec, type Layers, type ParameterSpec } from "./layers.ts"
import { only, PositiveInt } from "./model-config.ts"
import { layerNorm } from "./normalization.ts"

/**
 * transformers' CLIPVisionModel (CLIP's image tower, a ViT): non-overlapping patches embedded by a
 * bias-free convolution, a learned class token in front, learned position embeddings, a layer norm
 * (`pre_layrnorm`, spelled as in the checkpoints), the CLIP encoder, and the class token's final state
 * through `post_layernorm` as the pooled output. Parameters are named as inside a CLIPModel checkpoint
 * (`vision_model.…`).
 */

export const ClipVisionConfig = Schema.Struct({
  hidden_size: Schema.optionalWith(PositiveInt, { default: () => 768 }),
  intermediate_size: Schema.optionalWith(PositiveInt, { default: () => 3072 }),
  num_hidden_layers: Schema.optionalWith(PositiveInt, { default: () => 12 }),
  num_attention_heads: Schema.optionalWith(PositiveInt, { default: () => 12 }),
  num_channels: Schema.optionalWith(only(Schema.Literal(3), "3 (RGB; grey images are repeated into three channels)"), { default: () => 3 as const }),
  image_size: Schema.optionalWith(PositiveInt, { default: () => 224 }),
  patch_size: Schema.optionalWith(PositiveInt, { default: () => 32 }),
  hidden_act: Schema.optionalWith(only(Schema.Literal("quick_gelu", "gelu"), "\"quick_gelu\" and \"gelu\""), {
    default: () => "quick_gelu" as const
  }),
  layer_norm_eps: Schema.optionalWith(Schema.Number, { default: () => 1e-5 }),
  // Dropout changes training (transformers applies it in train mode); the published towers have none.
  attention_dropout: Schema.optionalWith(only(Schema.Literal(0), "0 (the tfjs engine's CLIP vision model has no attention dropout)"), {
    default: () => 0 as const
  }),
  initializer_range: Schema.optionalWith(Schema.Number, { default: () => 0.02 }),
  initializer_factor: Schema.optionalWith(Schema.Number, { default: () => 1 }),
  // CLIPVisionModelWithProjection's; a CLIPModel projects with its own projection_dim.
  projection_dim: Schema.optionalWith(PositiveInt, { default: () => 512 })
})
export type ClipVisionConfig = typeof ClipVisionConfig.Type

export const VISION_PREFIX = "vision_model"

/** Patches per side: the convolution drops a remainder, as torch's does. */
export const patchesPerSide = (c: ClipVisionConfig): number => Math.floor(c.image_size / c.patch_size)

export const clipVisionSpecs = (c: ClipVisionConfig): Array<ParameterSpec> => {
  const h = c.hidden_size
  const m = VISION_PREFIX
  return [
    tensorSpec(`${m}.embeddings.class_embedding`, [h]),
    ...convSpecs(`${m}.embeddings.patch_embedding`, c.num_channels, h, c.patch_size, false),
    tensorSpec(`${m}.embeddings.position_embedding.weight`, [patchesPerSide(c) ** 2 + 1, h]),
    ...normSpecs(`${m}.pre_layrnorm`, h),
    ...clipEncoderSpecs(`${m}.encoder`, c),
    ...normSpecs(`${m}.post_layernorm`, h)
  ]
}

export interface ClipVisionOutput {
  /** The encoder's output: [B, 1 + patches, hidden] (class token first). */
  readonly lastHiddenState: tf.Tensor3D
  /** `pooler_output`: post_layernorm of the class token's state, [B, hidden]. */
  readonly pooledOutput: tf.Tensor2D
}

/** The image tower on normalised pixels, NHWC [B, image_size, image_size, 3]. */
export const clipVisionModel = (c: ClipVisionConfig, layers: Layers, pixelValues: tf.Tensor4D): ClipVisionOutput => {
  const [batch, height, width, channels] = pixelValues.shape
  if (height !== c.image_size || width !== c.image_size || channels !== c.num_channels) {
    throw new Error(`the image tower takes ${c.image_size} × ${c.image_size} × ${c.num_channels} pixels, got ${height} × ${width} × ${channels}`)
  }
  const m = VISION_PREFIX
  const h = c.hidden_size
  const tokens = patchesPerSide(c) ** 2 + 1
  return tf.tidy(() => {
    const patches = layers.conv2d(`${m}.embeddings.patch_embedding`, pixelValues, { stride: c.patch_size, padding: 0 })
    // NHWC rows flatten in (row, column) order, as torch's flatten(2) of NCHW does.
    const patchTokens = tf.reshape(patches, [batch, tokens - 1, h])
    const classToken = tf.tile(tf.reshape(layers.parameter(`${m}.embeddings.class_embedding`), [1, 1, h]), [batch, 1, 1])
    const embedded = tf.add(tf.concat([classToken, patchTokens], 1), layers.parameter(`${m}.embeddings.position_embedding.weight`)) as tf.Tensor3D
    const last = clipEncoder(layers, `${m}.encoder`, c, layerNorm(layers, `${m}.pre_layrnorm`, embedded, c.layer_norm_eps))
    const classState = tf.reshape(tf.slice(last, [0, 0, 0], [batch, 1, h]), [batch, h]) as tf.Tensor2D
    return { lastHiddenState: last, pooledOutput: layerNorm(layers, `${m}.post_layernorm`, classState, c.layer_norm_eps) }
  })
}
