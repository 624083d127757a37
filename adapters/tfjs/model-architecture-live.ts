import { Effect, Layer } from "effect"
import { ArchitectureReadError, ModelArchitecture } from "../../framework/services/model-architecture.ts"
import { configRefusals } from "./config-refusals.ts"
import { readPipelineArchitecture } from "./pipeline-loader.ts"

/** The architecture service on the tfjs engine's model definitions: the parameter specs its configs give, and what it refuses in them. */
export const ModelArchitectureLive = Layer.succeed(ModelArchitecture, {
  parameters: (folder) => readPipelineArchitecture(folder).pipe(Effect.mapError((error) => new ArchitectureReadError({ folder, reason: error.message }))),
  configRefusals
})
