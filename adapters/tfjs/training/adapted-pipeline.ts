import type * as tf from "@tensorflow/tfjs-core"
import type { ComponentName, ResolvedAdaptation } from "../../../framework/declaration/adaptation.ts"
import type { ControlNetPlan } from "../controlnet.ts"
import { hashString, mixSeed } from "../../data/seeded-random.ts"
import { ADDED_TOKEN_EMBEDDING } from "../clip-text-model.ts"
import { layersOf, type Layers } from "../layers.ts"
import type { LoadedModel, StableDiffusionPipeline } from "../pipeline-loader.ts"
import type { TextEncoder } from "../prompt-encoding.ts"
import { loraLayers, type LoraWeights } from "./lora.ts"
import type { ClipTokenizer } from "../../tokenizer/clip-tokenizer.ts"
import { spellOutToken } from "./learned-token.ts"

/**
 * A pipeline as training left it, ready to run: what generation (and training itself) calls the
 * models through. Fully trained weights live in the pipeline's own parameter maps; LoRA adapters
 * wrap the layers; a learned token adds tokenizer entries and embedding rows.
 */
export interface AdaptedPipeline {
  /** Plans, configs, scheduler config and family of the base; its parameter maps hold any fully trained weights. */
  readonly base: StableDiffusionPipeline
  readonly unet: Layers
  readonly vae: Layers
  /** In pipeline order (text_encoder, then text_encoder_2), each with its possibly extended tokenizer. */
  readonly textEncoders: ReadonlyArray<TextEncoder>
  /** Rewrites a prompt before tokenising (a multi-vector token spelled out, as diffusers' `maybe_convert_prompt`). */
  readonly convertPrompt: (prompt: string) => string
  /** A conditioned experiment's ControlNet. */
  readonly controlnet?: { readonly plan: ControlNetPlan; readonly layers: Layers }
}

/** What can carry LoRA adapters: a pipeline component, or a conditioned experiment's ControlNet. */
export type AdaptedName = ComponentName | "controlnet"

/** A resolved adaptation with the tensors it adds to a pipeline (fully trained weights live in the pipeline's maps). */
export interface AdaptationTensors {
  readonly adaptation: ResolvedAdaptation
  /** LoRA A and B by component (or the ControlNet), then module name. */
  readonly lora: ReadonlyMap<AdaptedName, ReadonlyMap<string, LoraWeights>>
  /** With a learned token, every text encoder's token rows [vectors, hidden] and its tokenizer with the spellings added. */
  readonly token: ReadonlyMap<ComponentName, TokenRows>
  /** A conditioned experiment's ControlNet (its parameters, fully trained ones included; adapters are in `lora`). */
  readonly controlnet?: LoadedModel<ControlNetPlan>
}

export interface TokenRows {
  readonly rows: tf.Tensor
  readonly tokenizer: ClipTokenizer
}

/** A Layers whose `parameter` also answers the names in `extra` (the token's added rows). */
const withExtraParameters = (base: Layers, extra: ReadonlyMap<string, tf.Tensor>): Layers =>
  extra.size === 0 ? base : {
    ...base,
    parameter: (name) => extra.get(name) ?? base.parameter(name),
    has: (name) => extra.has(name) || base.has(name)
  }

export interface AdaptOptions {
  /** LoRA dropout for a training forward pass; absent at inference. */
  readonly dropoutSeed?: number
}

const componentLayers = (
  name: AdaptedName,
  parameters: ReadonlyMap<string, tf.Tensor>,
  tensors: AdaptationTensors | undefined,
  options: AdaptOptions
): Layers => {
  const plain = layersOf(parameters)
  const treatment = name === "controlnet" ? tensors?.adaptation.controlnet?.treatment : tensors?.adaptation.components[name]
  const adapters = tensors?.lora.get(name)
  if (treatment?._tag !== "lora" || adapters === undefined) return plain
  // Both text encoders name their modules alike: the component keys their masks apart.
  const dropout = options.dropoutSeed === undefined ? undefined : { rate: treatment.dropout, seed: mixSeed(options.dropoutSeed, hashString(name)) }
  return loraLayers(plain, adapters, treatment.scale, dropout)
}

/** The pipeline with `tensors` applied, or as it is (cheap: closures over the same tensors). */
export const adaptedPipeline = (base: StableDiffusionPipeline, tensors?: AdaptationTensors, options: AdaptOptions = {}): AdaptedPipeline => {
  const spellings = tensors?.adaptation.token?.spellings
  const controlnet = tensors?.controlnet
  return {
    base,
    unet: componentLayers("unet", base.unet.parameters, tensors, options),
    vae: componentLayers("vae", base.vae.parameters, tensors, options),
    textEncoders: base.textEncoders.map((encoder) => {
      const layers = componentLayers(encoder.name, encoder.parameters, tensors, options)
      const token = tensors?.token.get(encoder.name)
      if (token === undefined) return { plan: encoder.plan, layers, tokenizer: encoder.tokenizer }
      return { plan: encoder.plan, layers: withExtraParameters(layers, new Map([[ADDED_TOKEN_EMBEDDING, token.rows]])), tokenizer: token.tokenizer }
    }),
    convertPrompt: (prompt) => (spellings === undefined ? prompt : spellOutToken(prompt, spellings)),
    ...(controlnet === undefined
      ? {}
      : { controlnet: { plan: controlnet.plan, layers: componentLayers("controlnet", controlnet.parameters, tensors, options) } })
  }
}
