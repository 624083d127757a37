import * as tf from "@tensorflow/tfjs-core"
import type { ClipTokenizer } from "../tokenizer/clip-tokenizer.ts"
import { clipTextModel, type ClipTextPlan } from "./clip-text-model.ts"
import type { Layers } from "./layers.ts"
import type { Unet2DConditionPlan } from "./unet2d-condition.ts"

/** A text encoder ready to run: its plan, the layers it reads (plain or wrapped, e.g. with LoRA) and its tokenizer. */
export interface TextEncoder {
  readonly plan: ClipTextPlan
  readonly layers: Layers
  readonly tokenizer: ClipTokenizer
}

const tokenize = (encoder: TextEncoder, prompts: ReadonlyArray<string>) => prompts.map((p) => encoder.tokenizer.encode(p))

/**
 * SD 1.x / 2.x conditioning, as StableDiffusionPipeline.encode_prompt (no clip skip): the last hidden
 * state of the text encoder on the padded prompts, [B, 77, hidden].
 */
export const encodePromptSd = (encoder: TextEncoder, prompts: ReadonlyArray<string>): tf.Tensor3D => {
  const out = clipTextModel(encoder.plan, encoder.layers, tokenize(encoder, prompts))
  tf.dispose([out.penultimateHiddenState, out.pooledOutput, ...(out.textEmbeds ? [out.textEmbeds] : [])])
  return out.lastHiddenState
}

export interface SdxlPromptEmbeddings {
  /** Penultimate hidden states of both encoders, concatenated: [B, 77, hidden₁ + hidden₂]. */
  readonly promptEmbeds: tf.Tensor3D
  /** The second encoder's projected pooled output: [B, projection_dim]. */
  readonly pooledPromptEmbeds: tf.Tensor2D
}

/**
 * SDXL conditioning, as StableDiffusionXLPipeline.encode_prompt (same prompt for both encoders, no
 * clip skip): each encoder's `hidden_states[-2]` concatenated, and the pooled projection of the last.
 */
export const encodePromptSdxl = (encoders: ReadonlyArray<TextEncoder>, prompts: ReadonlyArray<string>): SdxlPromptEmbeddings => {
  const last = encoders[encoders.length - 1]!
  if (!last.plan.withProjection) throw new Error("SDXL's last text encoder must be a CLIPTextModelWithProjection")
  const outputs = encoders.map((e) => clipTextModel(e.plan, e.layers, tokenize(e, prompts)))
  const promptEmbeds = tf.concat(outputs.map((o) => o.penultimateHiddenState), -1)
  const pooledPromptEmbeds = outputs[outputs.length - 1]!.textEmbeds!
  for (const o of outputs) {
    tf.dispose([o.lastHiddenState, o.penultimateHiddenState, o.pooledOutput, ...(o.textEmbeds && o.textEmbeds !== pooledPromptEmbeds ? [o.textEmbeds] : [])])
  }
  return { promptEmbeds, pooledPromptEmbeds }
}

export interface ImageSizeConditioning {
  readonly originalSize: readonly [number, number]
  readonly cropTopLeft: readonly [number, number]
  readonly targetSize: readonly [number, number]
}

/**
 * SDXL's "time ids" for one image: original size, crop corner, target size (each height, width), checked
 * against the UNet as StableDiffusionXLPipeline._get_add_time_ids does.
 */
export const sdxlTimeIds = (
  unet: { readonly config: Pick<Unet2DConditionPlan["config"], "addition_time_embed_dim" | "projection_class_embeddings_input_dim"> },
  textEncoder2: { readonly config: Pick<ClipTextPlan["config"], "projection_dim"> },
  size: ImageSizeConditioning
): Array<number> => {
  const ids = [...size.originalSize, ...size.cropTopLeft, ...size.targetSize]
  const passed = (unet.config.addition_time_embed_dim ?? 0) * ids.length + textEncoder2.config.projection_dim
  if (passed !== unet.config.projection_class_embeddings_input_dim) {
    throw new Error(
      `the UNet expects an added time embedding vector of length ${unet.config.projection_class_embeddings_input_dim}, ` +
        `but ${passed} was created; check the UNet's addition_time_embed_dim and text_encoder_2's projection_dim`
    )
  }
  return ids
}
