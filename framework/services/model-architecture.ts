import { Context, Schema } from "effect"
import type { Effect } from "effect"
import type { ComponentName } from "../declaration/adaptation.ts"
import type { Generation } from "../declaration/generation.ts"
import type { EngineName } from "./engine.ts"
import type { ParameterInfo } from "../declaration/partition.ts"

/** A pipeline or architecture folder whose configs cannot be read: the folder and why. */
export class ArchitectureReadError extends Schema.TaggedError<ArchitectureReadError>()("ArchitectureReadError", {
  folder: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}

/** What of a generation declaration picks and configures the sampler. */
export type SamplerDeclaration = Pick<Generation, "sampler" | "steps" | "eta" | "schedulerConfig">

/**
 * The folders of configs an experiment's engine builds from: its base pipeline, and a ControlNet folder it
 * starts from, or `controlNetFromUnet` when its ControlNet is made from the base's UNet (conditioning.init "unet").
 */
export interface ConfigFolders {
  readonly base: string
  readonly controlNet?: string
  readonly controlNetFromUnet?: boolean
}

/** A config value an engine cannot honour: the declared field whose folder holds it, and why (file, key, rule, what to do). */
export interface ConfigRefusal {
  readonly field: "base" | "conditioning.init"
  readonly reason: string
}

/**
 * A model architecture as the tfjs engine's model definitions read it from the configs alone (no
 * weights): the parameters plan-time checks match `full({ only })` patterns and LoRA targets against,
 * and the config values that engine cannot build, refused at plan time rather than at the first step
 * that loads the base.
 */
export class ModelArchitecture extends Context.Tag("sardine/ModelArchitecture")<ModelArchitecture, {
  /** Every component of a diffusers pipeline folder (or an architecture folder of configs) with its parameters. */
  readonly parameters: (folder: string) => Effect.Effect<ReadonlyMap<ComponentName, ReadonlyArray<ParameterInfo>>, ArchitectureReadError>
  /**
   * Each config value of an experiment's folders that `engine` would not honour: on tfjs, what its
   * model and scheduler definitions cannot build (the model_index, every model config, the scheduler
   * config as the training's noise schedule and as the declared sampler, a ControlNet folder's config);
   * on torch, what its worker does not implement of what diffusers reads; on both, a config key the pinned
   * diffusers / transformers class does not take (it would ignore it), and a UNet diffusers'
   * `ControlNetModel.from_unet` cannot make a ControlNet of, when the ControlNet is made from it. A file that cannot be read yet
   * (a base not downloaded, or made by an earlier step) is not a refusal: the step that reads it reports it.
   */
  readonly configRefusals: (engine: EngineName, folders: ConfigFolders, sampler: SamplerDeclaration) => Effect.Effect<ReadonlyArray<ConfigRefusal>>
}>() {}
