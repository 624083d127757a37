import type { FileSystem } from "@effect/platform"
import { Context, Effect, Layer } from "effect"
import type { StepContext, StepError, StepHandler, StepHandlers } from "../runner/step-handler.ts"
import { StepImplementations } from "../runner/step-implementations.ts"
import { Datasets } from "../services/datasets.ts"
import { Engine, type EngineName } from "../services/engine.ts"
import { ImageIO } from "../services/image-io.ts"
import { ReportRenderer } from "../services/report-renderer.ts"
import { ClipScorers } from "../services/scorer.ts"
import { encodeLatents, encodeText, generate, initModel, mergeModel, train, trainClip } from "./engine-steps.ts"
import { evaluate } from "./evaluate.ts"
import { prepareData } from "./prepare-data.ts"
import { report } from "./report.ts"
import type { StepKind } from "../plan/step.ts"

type Services = Datasets | Engine | ImageIO | ClipScorers | ReportRenderer | FileSystem.FileSystem

/** The real step implementations, each calling the services the composition root provides. */
export const productionSteps = Layer.effect(
  StepImplementations,
  Effect.gen(function*() {
    const services = yield* Effect.context<Services>()
    const engine = Context.get(services, Engine)
    const bind = <K extends StepKind>(handler: (context: StepContext<K>) => Effect.Effect<void, StepError, Services>): StepHandler<K, never> => (context) =>
      Effect.provide(handler(context), services)
    const handlers: StepHandlers<never> = {
      "init-model": bind(initModel),
      "merge-model": bind(mergeModel),
      "prepare-data": bind(prepareData),
      "encode-latents": bind(encodeLatents),
      "encode-text": bind(encodeText),
      train: bind(train),
      "train-clip": bind(trainClip),
      generate: bind(generate),
      evaluate: bind(evaluate),
      report: bind(report)
    }
    const backendOf = (name: EngineName) => (engine.backendOf === undefined ? engine.backend : engine.backendOf(name))
    return {
      handlers,
      backend: (engines: ReadonlyArray<EngineName>) =>
        engines.length === 0 ? Effect.succeed(undefined) : Effect.map(Effect.forEach(engines, backendOf), (backends) => backends.join(", "))
    }
  })
)
