import * as tf from "@tensorflow/tfjs-core"
import { encodePromptSd, encodePromptSdxl, type ImageSizeConditioning, sdxlTimeIds } from "../prompt-encoding.ts"
import type { TextTimeConditioning } from "../unet2d-condition.ts"
import type { DiffusionModels } from "./diffusion-models.ts"

/**
 * The UNet's conditioning for one prompt, with the unconditional row first when guided (the batch
 * order of diffusers' pipelines): text embeddings, and for SDXL the pooled embedding and size/crop ids.
 */
export interface Conditioning {
  /** [1 or 2, tokens, cross_attention_dim]; row 0 unconditional when `guided`. */
  readonly context: tf.Tensor3D
  readonly textTime?: TextTimeConditioning
  readonly guided: boolean
}

/** As diffusers decides: guidance only above 1 (at 1 the guided prediction is the conditional one). */
export const usesGuidance = (guidanceScale: number): boolean => guidanceScale > 1

/**
 * Encodes `prompt` and, when guided, the negative prompt as StableDiffusionPipeline /
 * StableDiffusionXLPipeline.encode_prompt do. `negativePrompt` undefined is diffusers' None: the empty
 * prompt, or zero embeddings on SDXL pipelines with `force_zeros_for_empty_prompt` (an explicit "" is
 * encoded). SDXL also gets its micro-conditioning time ids (original size, crop corner, target size),
 * the same for both rows.
 */
export const promptConditioning = (
  models: DiffusionModels,
  prompt: string,
  guided: boolean,
  size: ImageSizeConditioning,
  negativePrompt?: string
): Conditioning =>
  tf.tidy(() => {
    const negative = negativePrompt ?? ""
    if (models.family === "sd") {
      const cond = encodePromptSd(models.textEncoders[0]!, [prompt])
      return { context: guided ? tf.concat([encodePromptSd(models.textEncoders[0]!, [negative]), cond]) : cond, guided }
    }
    const cond = encodePromptSdxl(models.textEncoders, [prompt])
    const uncond = guided
      ? negativePrompt === undefined && models.forceZerosForEmptyPrompt
        ? { promptEmbeds: tf.zerosLike(cond.promptEmbeds), pooledPromptEmbeds: tf.zerosLike(cond.pooledPromptEmbeds) }
        : encodePromptSdxl(models.textEncoders, [negative])
      : undefined
    const timeIds = sdxlTimeIds(models.unet.plan, models.textEncoders[models.textEncoders.length - 1]!.plan, size)
    return {
      context: uncond ? tf.concat([uncond.promptEmbeds, cond.promptEmbeds]) : cond.promptEmbeds,
      textTime: {
        textEmbeds: uncond ? tf.concat([uncond.pooledPromptEmbeds, cond.pooledPromptEmbeds]) : cond.pooledPromptEmbeds,
        timeIds: guided ? [timeIds, timeIds] : [timeIds]
      },
      guided
    }
  })

export const disposeConditioning = (conditioning: Conditioning): void => {
  conditioning.context.dispose()
  conditioning.textTime?.textEmbeds.dispose()
}
