import { Context, Schema } from "effect"
import type { Effect } from "effect"

/** One tensor of a checkpoint as its file declares it (nothing is decoded). */
export interface TensorListing {
  readonly name: string
  /** safetensors dtype: "F32", "F16", "BF16", "I64", …; "F32" for a tensor computed from a config (what sardine initialises). */
  readonly dtype: string
  readonly shape: ReadonlyArray<number>
  readonly parameters: number
}

/** A model of a pipeline folder (`unet`, `vae`, `text_encoder`, …), or the single file listed. */
export interface ComponentListing {
  readonly name: string
  /** The component's class from `model_index.json` (e.g. "UNet2DConditionModel"), when known. */
  readonly className?: string
  /**
   * Where the tensors were read: the safetensors headers of the weight files, or the model's `config.json`
   * (a folder with no weights, such as an architecture folder: the model `from_config` would build).
   */
  readonly source: "weights" | "config"
  readonly files: ReadonlyArray<string>
  readonly tensors: ReadonlyArray<TensorListing>
  readonly parameters: number
}

export interface WeightsListing {
  readonly path: string
  /** A safetensors file, a model folder (e.g. `unet/`), or a pipeline (or architecture) folder with `model_index.json`. */
  readonly kind: "file" | "component" | "pipeline"
  readonly components: ReadonlyArray<ComponentListing>
  readonly parameters: number
}

/** A checkpoint that cannot be listed: the file (or folder) and the reason. */
export class WeightsReadError extends Schema.TaggedError<WeightsReadError>()("WeightsReadError", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

/** Reading what a checkpoint holds: a safetensors file, a diffusers pipeline folder, or an architecture folder's configs. */
export class Weights extends Context.Tag("sardine/Weights")<Weights, {
  readonly list: (path: string) => Effect.Effect<WeightsListing, WeightsReadError>
}>() {}
