import { Effect } from "effect"
import { join } from "node:path"
import type { AutoencoderKlPlan } from "../autoencoder-kl.ts"
import { type Layers, layersOf, type ParameterMap } from "../layers.ts"
import { type ModelConfigError, readJsonFile } from "../model-config.ts"
import type { StableDiffusionPipeline } from "../pipeline-loader.ts"
import type { TextEncoder } from "../prompt-encoding.ts"
import type { Unet2DConditionPlan } from "../unet2d-condition.ts"
import type { ComponentName } from "../../../framework/declaration/adaptation.ts"

/**
 * What generation runs on: each model's plan with the layers the caller chose (plain, LoRA-wrapped,
 * with a learned token's rows, EMA weights…), the tokenizers (with any added token) and the pipeline's
 * scheduler config. Generation builds no layers itself, so a modified pipeline samples through the same code.
 */
export interface DiffusionModels {
  readonly family: "sd" | "sdxl"
  readonly unet: { readonly plan: Unet2DConditionPlan; readonly layers: Layers }
  readonly vae: { readonly plan: AutoencoderKlPlan; readonly layers: Layers }
  /** In pipeline order: text_encoder, then text_encoder_2 (SDXL). */
  readonly textEncoders: ReadonlyArray<TextEncoder>
  /** `scheduler/scheduler_config.json` as parsed, and its path for error messages. */
  readonly scheduler: { readonly config: unknown; readonly file: string }
  /**
   * SDXL's `force_zeros_for_empty_prompt` (model_index.json, default true): the unconditional branch of
   * classifier-free guidance uses zero embeddings rather than the encoding of "".
   */
  readonly forceZerosForEmptyPrompt: boolean
}

/**
 * The models of a loaded pipeline, each component's layers built by `layers` (plain layers by default).
 * Reads `force_zeros_for_empty_prompt` from the pipeline's model_index.json.
 */
export const diffusionModelsOf = (
  pipeline: StableDiffusionPipeline,
  layers: (component: ComponentName, parameters: ParameterMap) => Layers = (_, parameters) => layersOf(parameters)
): Effect.Effect<DiffusionModels, ModelConfigError> =>
  Effect.gen(function*() {
    const index = (yield* readJsonFile(join(pipeline.folder, "model_index.json"))) as Record<string, unknown>
    const forceZeros = index.force_zeros_for_empty_prompt
    return {
      family: pipeline.family,
      unet: { plan: pipeline.unet.plan, layers: layers("unet", pipeline.unet.parameters) },
      vae: { plan: pipeline.vae.plan, layers: layers("vae", pipeline.vae.parameters) },
      textEncoders: pipeline.textEncoders.map((e) => ({
        plan: e.plan,
        layers: layers(e.name, e.parameters),
        tokenizer: e.tokenizer
      })),
      scheduler: { config: pipeline.scheduler.config, file: join(pipeline.folder, "scheduler", "scheduler_config.json") },
      // Only StableDiffusionXLPipeline has the option; its default is true.
      forceZerosForEmptyPrompt: pipeline.family === "sdxl" && forceZeros !== false
    }
  })
