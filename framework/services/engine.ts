import { Context, Schema } from "effect"
import type { Effect } from "effect"
import type { BaseModel } from "../declaration/base-model.ts"
import type { ClipTraining } from "../declaration/clip-model.ts"
import type { ResolvedAdaptation } from "../declaration/adaptation.ts"
import type { Generation } from "../declaration/generation.ts"
import type { Training } from "../declaration/training.ts"

/** Reports `done` of `total` units ("steps", "images", …) of a long operation. */
export type ProgressSink = (done: number, total: number, unit: string) => Effect.Effect<void>

/** Receives one training step's metrics (loss, lr/<group>, grad_norm, images_per_s, …). */
export type MetricSink = (step: number, values: Readonly<Record<string, number>>) => Effect.Effect<void>

/**
 * The engines: the embedded tfjs engine, and the torch engine (a Python worker on PyTorch, diffusers, PEFT,
 * accelerate). The plan records which one computes each step (it is part of the step's content key).
 */
export const engineNames = ["tfjs", "torch"] as const
export type EngineName = typeof engineNames[number]

/** Which engine should serve a request; the tfjs engine when absent (an engine serving one kind ignores it). */
export interface EngineSelection {
  readonly engine?: EngineName
}

/** The base model and the absolute path of its diffusers pipeline folder. */
export interface ResolvedBase {
  readonly base: BaseModel
  readonly path: string
}

export interface InitModelRequest extends EngineSelection {
  /** Folder with model_index.json, each component's config.json, the scheduler config and tokenizer files. */
  readonly architecture: string
  readonly family: BaseModel["family"]
  readonly seed: number
  /** The new diffusers pipeline folder (must not exist). */
  readonly out: string
}

export interface EncodeRequest extends EngineSelection {
  readonly base: ResolvedBase
  /** Output folder of the prepare-data step. */
  readonly dataDir: string
  readonly outDir: string
  readonly progress: ProgressSink
}

/** A prepared held-out dataset and its latent and text caches (present when the training data's are). */
export interface HeldOutData {
  readonly dataDir: string
  readonly latentsDir?: string
  readonly textDir?: string
}

export interface TrainRequest extends EngineSelection {
  readonly base: ResolvedBase
  /** What trains (adaptation.ts); the trained model's manifest carries it as it is. */
  readonly adaptation: ResolvedAdaptation
  readonly train: Training
  /** The diffusers ControlNet folder `adaptation.controlnet.init` names, resolved (absent for init "unet"). */
  readonly controlNetFolder?: string
  readonly dataDir: string
  /** Cached latents of the training images, when the VAE is frozen. */
  readonly latentsDir?: string
  /** Cached text embeddings of the captions, when every text encoder is frozen and no token is learned. */
  readonly textDir?: string
  /** `train.validationLoss.data`, prepared, with its caches as the training data has them. */
  readonly validation?: HeldOutData
  /**
   * Checkpoints and the final trainable weights go here; when it holds a checkpoint from an interrupted
   * run, training continues from it as if never stopped.
   */
  readonly workDir: string
  /**
   * Data-parallel processes to train on (`resources.train.processes`; absent: one). `train.batchSize` is the
   * global batch, split among them; the torch engine runs them under torchrun, the tfjs engine refuses more than one.
   */
  readonly processes?: number
  /** `resources.train.sharding` (absent: "none"); the torch engine shards the full UNet over the processes under "fsdp". */
  readonly sharding?: "none" | "fsdp"
  /**
   * Nodes to train on, each with `processes` processes (`resources.train.nodes`; absent: one): the torch engine
   * starts them as the tasks of a SLURM job with srun, which only a job of the slurm executor can.
   */
  readonly nodes?: number
  readonly progress: ProgressSink
  readonly metrics: MetricSink
  readonly log: (message: string) => Effect.Effect<void>
  /** Receives each validation image (`train.validationPrompts`): an MLflow image series key, the step, the PNG. */
  readonly image?: (key: string, step: number, file: string) => Effect.Effect<void>
}

/** Where a train step keeps its validation images: `validation/step-<n>/p<prompt>.png`. */
export const validationFolder = "validation"

export interface TrainClipRequest {
  /** Folder with the CLIPConfig config.json and tokenizer files. */
  readonly architecture: string
  readonly seed: number
  readonly train: ClipTraining
  /** Prepared image–caption pairs: one folder per declared dataset, trained on together. */
  readonly dataDirs: ReadonlyArray<string>
  /** Checkpoints, and the trained model as a transformers CLIPModel folder under `model/`. */
  readonly workDir: string
  readonly progress: ProgressSink
  readonly metrics: MetricSink
  readonly log: (message: string) => Effect.Effect<void>
}

/** Where a train-clip step puts the trained CLIP model inside its output. */
export const clipModelFolder = "model"

/**
 * A LoRA or textual-inversion file applied on top of the model at generation (kohya or diffusers/PEFT
 * LoRA; diffusers' embedding layout), as diffusers' `load_lora_weights` / `load_textual_inversion`.
 */
export type AdapterFile =
  | { readonly kind: "lora"; readonly file: string; readonly scale: number }
  | { readonly kind: "embedding"; readonly file: string; readonly token?: string }

export interface GenerateRequest extends EngineSelection {
  readonly base: ResolvedBase
  /** The experiment's adaptation (its token replaces `{token}` in the prompts). */
  readonly adaptation: ResolvedAdaptation
  readonly generate: Generation
  /** Applied in order after the trained model (`sardine generate --lora / --embedding`). */
  readonly adapterFiles?: ReadonlyArray<AdapterFile>
  /** Output folder of the train step; absent for a baseline (the base as it is). */
  readonly modelDir?: string
  /** A conditioned experiment's scenes: the prepare-data folder of generate.conditions, with their conditioning images. */
  readonly conditionsDir?: string
  /** Image side in pixels (the declaration's, made explicit by normalisation). */
  readonly resolution: number
  readonly outDir: string
  readonly progress: ProgressSink
}

/** One generated sample, as listed in `samples.json` of a generate step's output. */
export interface GeneratedSample {
  readonly prompt: string
  /** The prompt as declared, `{token}` not yet replaced. */
  readonly declaredPrompt: string
  /** The negative prompt guidance used (`{token}` replaced); absent: diffusers' default (None). */
  readonly negativePrompt?: string
  readonly promptIndex: number
  readonly split: "seen" | "unseen"
  readonly seed: number
  /** Float32 TIFF of the normalised amplitude in [0, 1], relative to the output folder. */
  readonly tiff: string
  /** 8-bit PNG preview, relative to the output folder. */
  readonly png: string
  /** A conditioned experiment's sample: the scene of generate.conditions whose conditioning image produced it (its prepared index, id and file). */
  readonly condition?: { readonly scene: number; readonly id: string; readonly source: string }
}

export const samplesIndexFile = "samples.json"

export type ExportFormat = "diffusers" | "kohya" | "peft" | "embedding" | "controlnet"

export interface ExportRequest extends EngineSelection {
  readonly base: ResolvedBase
  readonly modelDir: string
  readonly format: ExportFormat
  readonly out: string
  /** Write the EMA weights when the model kept them (the declaration's `generate.useEma`), else the final ones. */
  readonly useEma: boolean
}

/** `sardine export --format onnx`: the pipeline's graphs for onnxruntime (services/onnx-pipeline.ts describes the folder). */
export interface OnnxExportRequest {
  readonly base: ResolvedBase
  /** Output folder of the train step; absent: the base as it is. */
  readonly modelDir?: string
  /** As ExportRequest's. */
  readonly useEma: boolean
  /** The new folder (must not exist). */
  readonly out: string
}

export interface OnnxExportSummary {
  /** Which trained weights were merged in; absent for a base. */
  readonly trained?: ExportSummary
  readonly opset: number
}

/** What an export wrote, for its output: which weights, and what users of the files must know. */
export interface ExportSummary {
  readonly weights: "ema" | "final"
  /** The training step the weights are from (the EMA: its average up to that step). */
  readonly step: number
  /** Lines for the user: what a format leaves out, how to prompt a multi-vector token, … */
  readonly notes: ReadonlyArray<string>
}

export class EngineError extends Schema.TaggedError<EngineError>()("EngineError", {
  operation: Schema.String,
  reason: Schema.String,
  /** The exception an engine's worker raised (torch engine): its qualified type, e.g. `safetensors_rust.SafetensorError`. */
  exception: Schema.optional(Schema.String),
  /** The innermost frames of that exception, `file:line in function: code`. */
  frames: Schema.optional(Schema.Array(Schema.String)),
  /** The error of the part that failed (a file, a kernel, the worker process), kept for logs and callers that look deeper. */
  cause: Schema.optional(Schema.Defect)
}) {
  override get message() {
    const where = this.frames === undefined || this.frames.length === 0 ? "" : `\n${this.frames.map((f) => `    at ${f}`).join("\n")}`
    return `${this.operation}: ${this.exception === undefined ? "" : `${this.exception}: `}${this.reason}${where}`
  }
}

/**
 * What trains and samples the diffusion models. In production, both engines behind one service: each
 * request goes to the engine it names (`EngineSelection`).
 */
export class Engine extends Context.Tag("sardine/Engine")<Engine, {
  /** The tensor backend in use ("wasm", "cpu", "tensorflow", "torch 2.15.0 on cuda:0 …"), for logs and run tags. */
  readonly backend: Effect.Effect<string, EngineError>
  /** The backend of one engine, where the service holds several. */
  readonly backendOf?: (engine: EngineName) => Effect.Effect<string, EngineError>
  /** Writes a pipeline with freshly initialised weights (seeded), as diffusers' from_config would build it. */
  readonly initModel: (request: InitModelRequest) => Effect.Effect<void, EngineError>
  readonly encodeLatents: (request: EncodeRequest) => Effect.Effect<void, EngineError>
  readonly encodeText: (request: EncodeRequest) => Effect.Effect<void, EngineError>
  readonly train: (request: TrainRequest) => Effect.Effect<void, EngineError>
  /** Trains a CLIP model contrastively from nothing (the small SAR CLIP of the alignment metric). */
  readonly trainClip: (request: TrainClipRequest) => Effect.Effect<void, EngineError>
  readonly generate: (request: GenerateRequest) => Effect.Effect<void, EngineError>
  readonly export: (request: ExportRequest) => Effect.Effect<ExportSummary, EngineError>
  /** The ONNX export, where the engine has an exporter (the torch engine's torch.onnx). */
  readonly exportOnnx?: (request: OnnxExportRequest) => Effect.Effect<OnnxExportSummary, EngineError>
}>() {}

/** The torch engine's Python environment as its worker describes it. */
export interface TorchEnvironment {
  readonly python: string
  /** How the Python was found: "SARDINE_PYTHON" or the venv `sardine engine setup torch` made. */
  readonly source: string
  readonly pythonVersion: string
  /** Installed versions of the pinned packages (null: missing). */
  readonly versions: Readonly<Record<string, string | null>>
  /** The pins the engine was tested with (adapters/torch/requirements.txt). */
  readonly pins: Readonly<Record<string, string>>
  readonly bitsandbytes: string | null
  readonly cuda: string | null
  readonly devices: ReadonlyArray<{ readonly name: string; readonly memoryBytes: number; readonly bf16: boolean | null }>
  /** Where the worker computes ("cpu", "cuda"). */
  readonly device: string
  readonly threads: number
}

/** The engines' environments: what `--engine auto`, plan-time checks and `sardine engine` ask. */
export class EngineEnvironments extends Context.Tag("sardine/EngineEnvironments")<EngineEnvironments, {
  /** Whether the torch engine has a Python to run (SARDINE_PYTHON, or the venv `sardine engine setup torch` made). */
  readonly torchConfigured: Effect.Effect<boolean>
  /** Starts the torch worker and describes its environment; fails naming what is missing or not of the pinned version. */
  readonly torch: Effect.Effect<TorchEnvironment, EngineError>
  /** Creates (or completes) a venv with the torch engine's pinned packages, pip's progress on stderr, and checks it. */
  readonly setupTorch: (venv: string | undefined) => Effect.Effect<TorchEnvironment, EngineError>
}>() {}
