import type * as tf from "@tensorflow/tfjs-core"
import { hashString, mixSeed } from "../../data/seeded-random.ts"
import { ADDED_TOKEN_EMBEDDING } from "../clip-text-model.ts"
import { layersOf, type Layers } from "../layers.ts"
import type { StableDiffusionPipeline } from "../pipeline-loader.ts"
import type { TextEncoder } from "../prompt-encoding.ts"
import { loraLayers, type LoraModule, type LoraWeights } from "./lora.ts"
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
}

export type ComponentName = "unet" | "vae" | "text_encoder" | "text_encoder_2"

export interface LoraPart {
  readonly kind: "lora"
  readonly rank: number
  readonly alpha: number
  readonly dropout: number
  readonly targets: ReadonlyArray<string>
  readonly modules: ReadonlyArray<LoraModule>
  /** By module name. */
  readonly weights: ReadonlyMap<string, LoraWeights>
}

export interface TokenPart {
  readonly token: string
  readonly init: string
  /** `<SAR>`, `<SAR>_1`, … */
  readonly spellings: ReadonlyArray<string>
  /** [vectors, hidden] per text encoder: every encoder of the base has the token. */
  readonly rows: ReadonlyMap<ComponentName, tf.Tensor>
  /** Each encoder's tokenizer with the spellings added (see `tokenizerWithToken`). */
  readonly tokenizers: ReadonlyMap<ComponentName, ClipTokenizer>
  /** The encoders whose rows train (the others keep the init word's embedding). */
  readonly trained: ReadonlyArray<ComponentName>
  readonly normReprojection: boolean
}

/** What training changes besides fully trained weights (which are in the parameter maps). */
export interface Adaptation {
  /** Components trained fully (their maps hold the trained weights) or with LoRA. */
  readonly components: Partial<Record<ComponentName, { readonly kind: "full" } | LoraPart>>
  readonly token?: TokenPart
}

export const noAdaptation: Adaptation = { components: {} }

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
  name: ComponentName,
  parameters: ReadonlyMap<string, tf.Tensor>,
  part: Adaptation["components"][ComponentName],
  options: AdaptOptions
): Layers => {
  const plain = layersOf(parameters)
  if (part === undefined || part.kind === "full") return plain
  // Both text encoders name their modules alike: the component keys their masks apart.
  const dropout = options.dropoutSeed === undefined ? undefined : { rate: part.dropout, seed: mixSeed(options.dropoutSeed, hashString(name)) }
  return loraLayers(plain, part.weights, part.alpha / part.rank, dropout)
}

/** The pipeline with `adaptation` applied (cheap: closures over the same tensors). */
export const adaptedPipeline = (base: StableDiffusionPipeline, adaptation: Adaptation, options: AdaptOptions = {}): AdaptedPipeline => {
  const token = adaptation.token
  return {
    base,
    unet: componentLayers("unet", base.unet.parameters, adaptation.components.unet, options),
    vae: componentLayers("vae", base.vae.parameters, adaptation.components.vae, options),
    textEncoders: base.textEncoders.map((encoder) => {
      const name = encoder.name as ComponentName
      const layers = componentLayers(name, encoder.parameters, adaptation.components[name], options)
      const rows = token?.rows.get(name)
      const tokenizer = token?.tokenizers.get(name)
      if (rows === undefined || tokenizer === undefined) return { plan: encoder.plan, layers, tokenizer: encoder.tokenizer }
      return { plan: encoder.plan, layers: withExtraParameters(layers, new Map([[ADDED_TOKEN_EMBEDDING, rows]])), tokenizer }
    }),
    convertPrompt: (prompt) => (token === undefined ? prompt : spellOutToken(prompt, token.spellings))
  }
}
