import { Context, Schema } from "effect"
import type { Effect } from "effect"
import type { Generation } from "../declaration/generation.ts"
import type { EngineError, ProgressSink } from "./engine.ts"

/**
 * An ONNX export of a pipeline (`sardine export --format onnx`, written by the torch engine) and the engine
 * that samples it on onnxruntime-node (`sardine generate --engine onnx`).
 */

/** The manifest at the root of an ONNX export folder. */
export const onnxManifestFile = "sardine-onnx.json"

/** A graph's file (relative to the export folder) and its input and output names, in the order sardine feeds and reads them. */
const Graph = <I extends Schema.Schema.Any>(inputs: I) =>
  Schema.Struct({
    file: Schema.String,
    inputs,
    /** The first is the one sardine reads. */
    outputs: Schema.Tuple([Schema.String], Schema.String)
  })

/** What every export records, whatever the family. */
const common = {
  format: Schema.Literal("sardine-onnx-pipeline"),
  version: Schema.Literal(1),
  /** The diffusers pipeline class exported. */
  pipeline: Schema.NullOr(Schema.String),
  opset: Schema.Int,
  precision: Schema.Literal("float32"),
  /** The CLIP tokenizer folder, relative. */
  tokenizer: Schema.String,
  /** diffusers' scheduler_config.json, relative. */
  scheduler: Schema.String,
  latentChannels: Schema.Int,
  /** The UNet's sample_size: latents per side at the default image size. */
  sampleSize: Schema.Int,
  vaeScaleFactor: Schema.Int,
  scalingFactor: Schema.Number,
  /** Tokens per prompt (the tokenizer's model_max_length). */
  tokens: Schema.Int
}

/** latent_sample → sample. */
const vaeDecoder = Graph(Schema.Tuple(Schema.String))

/** SD 1.x / 2.x: one text encoder, whose last hidden state conditions the UNet. */
export const SdOnnxManifest = Schema.Struct({
  ...common,
  family: Schema.Literal("sd"),
  graphs: Schema.Struct({
    /** sample, timestep, encoder_hidden_states. */
    unet: Graph(Schema.Tuple(Schema.String, Schema.String, Schema.String)),
    vae_decoder: vaeDecoder,
    /** input_ids → last_hidden_state first. */
    text_encoder: Graph(Schema.Tuple(Schema.String))
  })
})

/**
 * SDXL: two text encoders whose penultimate hidden states are concatenated, the second's pooled projection
 * (text_embeds) and the size / crop ids as the UNet's added conditions.
 */
export const SdxlOnnxManifest = Schema.Struct({
  ...common,
  family: Schema.Literal("sdxl"),
  graphs: Schema.Struct({
    /** sample, timestep, encoder_hidden_states, text_embeds, time_ids. */
    unet: Graph(Schema.Tuple(Schema.String, Schema.String, Schema.String, Schema.String, Schema.String)),
    vae_decoder: vaeDecoder,
    /** input_ids → the penultimate hidden state first. */
    text_encoder: Graph(Schema.Tuple(Schema.String)),
    /** input_ids → the penultimate hidden state, then text_embeds, first. */
    text_encoder_2: Schema.Struct({
      file: Schema.String,
      inputs: Schema.Tuple(Schema.String),
      outputs: Schema.Tuple([Schema.String, Schema.String], Schema.String)
    })
  }),
  /** The second encoder's CLIP tokenizer folder, relative. */
  tokenizer_2: Schema.String,
  /** The pipeline's force_zeros_for_empty_prompt: no negative prompt is zero embeddings, not the empty prompt's. */
  forceZerosForEmptyPrompt: Schema.Boolean
})

export const OnnxManifest = Schema.Union(SdOnnxManifest, SdxlOnnxManifest)
export type OnnxManifest = typeof OnnxManifest.Type

export interface OnnxGenerateRequest {
  /** The ONNX export folder. */
  readonly model: string
  readonly manifest: OnnxManifest
  readonly generate: Generation
  /** Image side in pixels when the generation declares none. */
  readonly resolution: number
  readonly outDir: string
  readonly progress: ProgressSink
}

/** onnxruntime-node as sardine runs it. */
export interface OnnxRuntimeInfo {
  readonly version: string
  /** The execution providers sessions are created with, in order of preference ("cuda", "cpu"). */
  readonly providers: ReadonlyArray<string>
  /** Providers sardine would use that this onnxruntime build knows but whose libraries are not installed (cuda). */
  readonly unavailable: ReadonlyArray<string>
}

export class OnnxEngine extends Context.Tag("sardine/OnnxEngine")<OnnxEngine, {
  readonly runtime: Effect.Effect<OnnxRuntimeInfo, EngineError>
  /** Writes what the generate step writes (images/, samples.json) for an ONNX export. */
  readonly generate: (request: OnnxGenerateRequest) => Effect.Effect<void, EngineError>
}>() {}

/** "onnxruntime-node 1.30.0 (cpu)": for samples.json and logs. */
export const onnxBackendText = (info: OnnxRuntimeInfo): string => `onnxruntime-node ${info.version} (${info.providers.join(", ")})`
