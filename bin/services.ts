import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { DatasetsLive } from "../adapters/data/datasets-live.ts"
import { ImageIOLive } from "../adapters/images/image-io-live.ts"
import { runPushLayer } from "../adapters/mlflow/push.ts"
import { trackerFactoryLayer } from "../adapters/mlflow/tracker-factory.ts"
import { WeightsLive } from "../adapters/safetensors/weights-listing.ts"
import { TokenizerTrainerLive } from "../adapters/tokenizer/tokenizer-trainer-live.ts"
import { executorFactoryLayer } from "../adapters/slurm/executor-factory.ts"
import { progressFor } from "../framework/runner/progress.ts"
import { Engine } from "../framework/services/engine.ts"
import { ModelArchitecture } from "../framework/services/model-architecture.ts"
import { ReportRenderer } from "../framework/services/report-renderer.ts"
import { ClipScorers } from "../framework/services/scorer.ts"
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
  executorFactoryLayer()
)

/** The heavy ones, imported and started on first use (see lazy-layer.ts). */
const heavy = Layer.mergeAll(
  lazyLayer(
    Engine,
    Effect.flatMap(Effect.promise(() => import("../adapters/tfjs/engine-live.ts")), (m) => Effect.provide(Engine, m.EngineLive)),
    ["backend"]
  ),
  lazyLayer(
    ClipScorers,
    Effect.map(Effect.promise(() => import("../adapters/clip-scorer/clip-scorers-live.ts")), (m) => Effect.provide(ClipScorers, m.ClipScorersLive))
      .pipe(Effect.flatten)
  ),
  lazyLayer(
    ModelArchitecture,
    Effect.flatMap(Effect.promise(() => import("../adapters/tfjs/model-architecture-live.ts")), (m) => Effect.provide(ModelArchitecture, m.ModelArchitectureLive))
  ),
  lazyLayer(
    ReportRenderer,
    Effect.flatMap(Effect.promise(() => import("../reports/report-renderer-live.ts")), (m) => Effect.provide(ReportRenderer, m.ReportRendererLive))
  )
).pipe(Layer.provide(ImageIOLive))

/** Every service the commands use, as production provides them. */
export const productionServices = Layer.mergeAll(light, heavy)
