import { Effect } from "effect"
import { type Engine, EngineError, type EngineName } from "../framework/services/engine.ts"

type EngineService = Engine["Type"]

/**
 * Both engines behind the one Engine service: each request goes to the engine it names (tfjs when it names
 * none), each engine started on its first request. train-clip always runs on tfjs (the plan says so).
 */
export const engineRouter = (engines: Readonly<Record<EngineName, Effect.Effect<EngineService, EngineError>>>): EngineService => {
  const on = <A>(name: EngineName | undefined, use: (engine: EngineService) => Effect.Effect<A, EngineError>) => Effect.flatMap(engines[name ?? "tfjs"], use)
  return {
    backend: on("tfjs", (e) => e.backend),
    backendOf: (name) => on(name, (e) => e.backend),
    initModel: (request) => on(request.engine, (e) => e.initModel(request)),
    encodeLatents: (request) => on(request.engine, (e) => e.encodeLatents(request)),
    encodeText: (request) => on(request.engine, (e) => e.encodeText(request)),
    train: (request) => on(request.engine, (e) => e.train(request)),
    trainClip: (request) => on("tfjs", (e) => e.trainClip(request)),
    generate: (request) => on(request.engine, (e) => e.generate(request)),
    export: (request) => on(request.engine, (e) => e.export(request)),
    // Only the torch engine has an ONNX exporter.
    exportOnnx: (request) =>
      on("torch", (e) =>
        e.exportOnnx === undefined
          ? Effect.fail(new EngineError({ operation: "export", reason: "the torch engine has no ONNX exporter" }))
          : e.exportOnnx(request))
  }
}
