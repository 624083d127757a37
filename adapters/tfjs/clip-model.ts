import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { ClipTextConfig, clipTextModel, clipTextSpecs, type ClipTextPlan } from "./clip-text-model.ts"
import { ClipVisionConfig, clipVisionModel, clipVisionSpecs } from "./clip-vision-model.ts"
import { linearSpecs, tensorSpec, type Layers, type ParameterSpec } from "./layers.ts"
import { decodeConfig, ModelConfigError, only, PositiveInt, requireThat } from "./model-config.ts"
import { unknownConfigKeys, unknownKeyReason } from "./unknown-config-keys.ts"

/**
 * transformers' CLIPModel: the text tower (CLIPTextModel), the image tower (CLIPVisionModel), each
 * pooled output projected without bias into one space (`text_projection`, `visual_projection`), and a
 * learned temperature `logit_scale` (the logits are exp(logit_scale) · cosine). Parameters are named
 * as in CLIPModel checkpoints.
 */

export const ClipModelConfig = Schema.Struct({
  text_config: Schema.optionalWith(ClipTextConfig, { default: () => Schema.decodeSync(ClipTextConfig)({}) }),
  vision_config: Schema.optionalWith(ClipVisionConfig, { default: () => Schema.decodeSync(ClipVisionConfig)({}) }),
  projection_dim: Schema.optionalWith(PositiveInt, { default: () => 512 }),
  logit_scale_init_value: Schema.optionalWith(Schema.Number, { default: () => 2.6592 }),
  initializer_factor: Schema.optionalWith(Schema.Number, { default: () => 1 }),
  // Older configs' overrides of the towers, which the pinned transformers applies over text_config / vision_config.
  text_config_dict: Schema.optionalWith(only(Schema.Null, "null (the tfjs engine reads text_config: merge text_config_dict into it)"), {
    default: () => null
  }),
  vision_config_dict: Schema.optionalWith(only(Schema.Null, "null (the tfjs engine reads vision_config: merge vision_config_dict into it)"), {
    default: () => null
  })
})
export type ClipModelConfig = typeof ClipModelConfig.Type

export interface ClipModelPlan {
  readonly config: ClipModelConfig
  /** The text tower with CLIPModel's `text_projection` (to `projection_dim`). */
  readonly text: ClipTextPlan
  readonly vision: ClipVisionConfig
}

export const LOGIT_SCALE = "logit_scale"

/**
 * Why each key of a CLIPModel config (top level and towers) that neither sardine's schemas name nor the
 * pinned transformers ignores is refused: it would be ignored here (unknown-config-keys.ts).
 */
const unknownClipKeys = (json: Readonly<Record<string, unknown>>): ReadonlyArray<string> => [
  ...unknownConfigKeys(json, ClipModelConfig.fields, "CLIPConfig").map((key) => unknownKeyReason(key, "CLIPConfig", "tfjs")),
  ...unknownConfigKeys(json.text_config, ClipTextConfig.fields, "CLIPTextConfig").map((key) =>
    unknownKeyReason(`text_config.${key}`, "CLIPTextConfig", "tfjs")
  ),
  ...unknownConfigKeys(json.vision_config, ClipVisionConfig.fields, "CLIPVisionConfig").map((key) =>
    unknownKeyReason(`vision_config.${key}`, "CLIPVisionConfig", "tfjs")
  )
]

export const decodeClipModelConfig = (json: unknown, file: string): Effect.Effect<ClipModelPlan, ModelConfigError> =>
  Effect.gen(function*() {
    const config = yield* decodeConfig(ClipModelConfig, json, file)
    const unknown = unknownClipKeys(json as Readonly<Record<string, unknown>>)
    if (unknown.length > 0) return yield* new ModelConfigError({ file, reason: unknown.join("; ") })
    const { text_config: text, vision_config: vision } = config
    yield* requireThat(
      text.hidden_size % text.num_attention_heads === 0,
      file,
      `text_config.num_attention_heads ${text.num_attention_heads} must divide text_config.hidden_size ${text.hidden_size}`
    )
    yield* requireThat(
      vision.hidden_size % vision.num_attention_heads === 0,
      file,
      `vision_config.num_attention_heads ${vision.num_attention_heads} must divide vision_config.hidden_size ${vision.hidden_size}`
    )
    yield* requireThat(
      vision.patch_size <= vision.image_size,
      file,
      `vision_config.patch_size ${vision.patch_size} exceeds vision_config.image_size ${vision.image_size}`
    )
    return { config, text: { config: { ...text, projection_dim: config.projection_dim }, withProjection: true }, vision }
  })

export const clipModelSpecs = (plan: ClipModelPlan): Array<ParameterSpec> => [
  ...clipTextSpecs(plan.text),
  ...clipVisionSpecs(plan.vision),
  ...linearSpecs("visual_projection", plan.vision.hidden_size, plan.config.projection_dim, false),
  tensorSpec(LOGIT_SCALE, [])
]

/** `get_image_features`: the projected pooled image state, [B, projection_dim] (not normalised). */
export const clipImageFeatures = (plan: ClipModelPlan, layers: Layers, pixelValues: tf.Tensor4D): tf.Tensor2D =>
  tf.tidy(() => layers.linear("visual_projection", clipVisionModel(plan.vision, layers, pixelValues).pooledOutput) as tf.Tensor2D)

/** `get_text_features`: the projected pooled text state, [B, projection_dim] (not normalised). */
export const clipTextFeatures = (plan: ClipModelPlan, layers: Layers, inputIds: ReadonlyArray<Int32Array>): tf.Tensor2D =>
  tf.tidy(() => clipTextModel(plan.text, layers, inputIds).textEmbeds!)

/** Rows scaled to unit length, as CLIPModel normalises its embeddings. */
export const unitRows = (x: tf.Tensor2D): tf.Tensor2D => tf.tidy(() => tf.div(x, tf.norm(x, "euclidean", 1, true)))

export interface ClipModelOutput {
  /** exp(logit_scale) · cos(image i, text j): [images, texts]. */
  readonly logitsPerImage: tf.Tensor2D
  readonly imageEmbeds: tf.Tensor2D
  readonly textEmbeds: tf.Tensor2D
}

/** CLIPModel's forward pass: unit embeddings of both towers and the scaled similarity logits. */
export const clipModel = (plan: ClipModelPlan, layers: Layers, pixelValues: tf.Tensor4D, inputIds: ReadonlyArray<Int32Array>): ClipModelOutput =>
  tf.tidy(() => {
    const imageEmbeds = unitRows(clipImageFeatures(plan, layers, pixelValues))
    const textEmbeds = unitRows(clipTextFeatures(plan, layers, inputIds))
    const logitsPerImage = tf.mul(tf.matMul(imageEmbeds, textEmbeds, false, true), tf.exp(layers.parameter(LOGIT_SCALE))) as tf.Tensor2D
    return { logitsPerImage, imageEmbeds, textEmbeds }
  })
