import { Effect, Schema } from "effect"
import { ModelArchitectureLive } from "../../adapters/tfjs/model-architecture-live.ts"
import { Components } from "../../framework/declaration/components.ts"
import { Training } from "../../framework/declaration/training.ts"
import { ModelArchitecture } from "../../framework/services/model-architecture.ts"

/** The parameters of a pipeline or architecture folder, as plan-time checks read them (configs only). */
export const architectureOf = (folder: string) =>
  Effect.runPromise(Effect.provide(Effect.flatMap(ModelArchitecture, (m) => m.parameters(folder)), ModelArchitectureLive))

/** Declared components and training settings, decoded (defaults filled). */
export const components = (input: typeof Components.Encoded) => Schema.decodeUnknownSync(Components)(input)
export const training = (input: typeof Training.Encoded) => Schema.decodeUnknownSync(Training)(input)
