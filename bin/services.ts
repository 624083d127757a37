import type { FileSystem } from "@effect/platform"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Effect, Layer } from "effect"
import { DatasetsLive } from "../adapters/data/datasets-live.ts"
import { ImageIOLive } from "../adapters/images/image-io-live.ts"
import { runPushLayer } from "../adapters/mlflow/push.ts"
import { trackerFactoryLayer } from "../adapters/mlflow/tracker-factory.ts"
import { WeightsLive } from "../adapters/safetensors/weights-listing.ts"
import { TokenizerTrainerLive } from "../adapters/tokenizer/tokenizer-trainer-live.ts"
import { executorFactoryLayer } from "./executor-factory.ts"
import { progressFor } from "../framework/runner/progress.ts"
import { Engine } from "../framework/services/engine.ts"
import type { ImageIO } from "../framework/services/image-io.ts"
import { ModelArchitecture } from "../framework/services/model-architecture.ts"
import { OnnxEngine } from "../framework/services/onnx-pipeline.ts"
import { ReportRenderer } from "../framework/services/report-renderer.ts"
import { ClipScorers } from "../framework/services/scorer.ts"
import { EngineEnvironmentsLive } from "../adapters/torch/python-environment.ts"
import { engineRouter } from "./engine-router.ts"
import { lazyLayer } from "./lazy-layer.ts"

/** The light services every command may use, built at start. */
const light = Layer.mergeAll(
  NodeContext.layer,
  progressFor(process.stderr),
  ImageIOLive,
  DatasetsLive.pipe(Layer.provide(ImageIOLive)),
  WeightsLive,
  TokenizerTrainerLive,
  runPushLayer(),
  trackerFactoryLayer(),
  executorFactoryLayer(),
  EngineEnvironmentsLive
)

/** Both engines, each imported and started on its first request (the router picks per request). */
const engines = Effect.gen(function*() {
  const context = yield* Effect.context<ImageIO | FileSystem.FileSystem>()
  const tfjs = yield* Effect.cached(
    Effect.flatMap(Effect.promise(() => import("../adapters/tfjs/engine-live.ts")), (m) => Effect.provide(Engine, m.EngineLive)).pipe(
      Effect.provide(context)
    )
  )
  const torch = yield* Effect.cached(
    Effect.flatMap(Effect.promise(() => import("../adapters/torch/torch-engine.ts")), (m) => m.makeTorchEngine()).pipe(Effect.provide(context))
  )
  return engineRouter({ tfjs, torch })
})

/** The heavy ones, imported and started on first use (see lazy-layer.ts). */
const heavy = Layer.mergeAll(
  lazyLayer(Engine, engines, ["backend"]),
  lazyLayer(
    ClipScorers,
    Effect.map(Effect.promise(() => import("../adapters/clip-scorer/clip-scorers-live.ts")), (m) => Effect.provide(ClipScorers, m.ClipScorersLive))
      .pipe(Effect.flatten)
  ),
  lazyLayer(
    ModelArchitecture,
    Effect.flatMap(
      Effect.promise(() => import("../adapters/tfjs/model-architecture-live.ts")),
      (m) => Effect.provide(ModelArchitecture, m.ModelArchitectureLive)
    )
  ),
  lazyLayer(
    OnnxEngine,
    Effect.flatMap(Effect.promise(() => import("../adapters/onnx/onnx-engine.ts")), (m) => Effect.provide(m.makeOnnxEngine, NodeContext.layer)),
    ["runtime"]
  ),
  lazyLayer(
    ReportRenderer,
    Effect.flatMap(Effect.promise(() => import("../reports/report-renderer-live.ts")), (m) => Effect.provide(ReportRenderer, m.ReportRendererLive))
  )
).pipe(Layer.provide(Layer.merge(ImageIOLive, NodeContext.layer)))

/** Every service the commands use, as production provides them. */
export const productionServices = Layer.mergeAll(light, heavy)
