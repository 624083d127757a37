import { Context, Schema } from "effect"
import type { Effect } from "effect"
import type { ComponentName } from "../declaration/adaptation.ts"
import type { Generation } from "../declaration/generation.ts"
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
 * A model architecture as the tfjs engine's model definitions read it from the configs alone (no
 * weights): the parameters plan-time checks match `full({ only })` patterns and LoRA targets against,
 * and the config values that engine cannot build, refused at plan time rather than at the first step
 * that loads the base.
 */
export class ModelArchitecture extends Context.Tag("sardine/ModelArchitecture")<ModelArchitecture, {
  /** Every component of a diffusers pipeline folder (or an architecture folder of configs) with its parameters. */
  readonly parameters: (folder: string) => Effect.Effect<ReadonlyMap<ComponentName, ReadonlyArray<ParameterInfo>>, ArchitectureReadError>
  /**
   * Each config value of a pipeline (or architecture) folder the tfjs engine cannot build — the
   * model_index, every model config, the scheduler config as the training's noise schedule and as the
   * declared sampler — as `<file>: <field>: <rule>`. A file that cannot be read yet (a base not
   * downloaded, or made by an earlier step) is not a refusal: the step that reads it reports it.
   */
  readonly tfjsRefusals: (folder: string, sampler: SamplerDeclaration) => Effect.Effect<ReadonlyArray<string>>
}>() {}
