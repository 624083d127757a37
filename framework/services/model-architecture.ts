import { Context, Schema } from "effect"
import type { Effect } from "effect"
import type { ComponentName } from "../declaration/adaptation.ts"
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

/**
 * The parameters of a model architecture, read from its configs alone (no weights): what plan-time
 * checks match `full({ only })` patterns and LoRA targets against.
 */
export class ModelArchitecture extends Context.Tag("sardine/ModelArchitecture")<ModelArchitecture, {
  /** Every component of a diffusers pipeline folder (or an architecture folder of configs) with its parameters. */
  readonly parameters: (folder: string) => Effect.Effect<ReadonlyMap<ComponentName, ReadonlyArray<ParameterInfo>>, ArchitectureReadError>
}>() {}
