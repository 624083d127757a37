import { Effect, Layer } from "effect"
import { join } from "node:path"
import type { ComponentName } from "../../framework/declaration/adaptation.ts"
import { clipModelFolder, Engine, EngineError, type ExportRequest, type GenerateRequest } from "../../framework/services/engine.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { selectBackend } from "./backend.ts"
import { trainClipModel } from "./clip-training/clip-trainer.ts"
import { encodeLatents } from "./encoding/latent-cache.ts"
import { encodeText } from "./encoding/text-cache.ts"
import { exportModel } from "./export/export-model.ts"
import type { Layers } from "./layers.ts"
import { disposePipeline, loadPipeline } from "./pipeline-loader.ts"
import { type DiffusionModels, diffusionModelsOf } from "./sampling/diffusion-models.ts"
import { initModel } from "./init/init-model.ts"
import { applyAdapterFiles } from "./sampling/adapter-files.ts"
import { conditionScenes } from "./sampling/condition-scenes.ts"
import { generateSamples } from "./sampling/generate-samples.ts"
import { spellOutToken } from "./training/learned-token.ts"
import { adaptedPipeline, type AdaptedPipeline } from "./training/adapted-pipeline.ts"
import { disposeAdaptation } from "./training/trainable-model.ts"
import { applyTrainedModel } from "./training/trained-model-files.ts"
import { prepareBackendForTraining, trainModel } from "./training/trainer.ts"

/**
 * The tfjs engine as the Engine service: picks the backend once (SARDINE_BACKEND or the fastest that
 * works), then runs the encode, train, generate and export steps on it. Every failure becomes an
 * EngineError naming the operation and the reason (file, field, kernel…) the part reported.
 */

const failed = (operation: string) => (error: { readonly message: string }) => new EngineError({ operation, reason: error.message, cause: error })

/** The models generation runs on: the adapted layers of every component and the extended tokenizers. */
const modelsOf = (view: AdaptedPipeline) =>
  Effect.gen(function*() {
    const byComponent: Partial<Record<ComponentName, Layers | undefined>> = {
      unet: view.unet,
      vae: view.vae,
      text_encoder: view.textEncoders[0]?.layers,
      text_encoder_2: view.textEncoders[1]?.layers
    }
    const models = yield* diffusionModelsOf(view.base, (component) => {
      const layers = byComponent[component]
      if (layers === undefined) throw new Error(`the adapted pipeline has no ${component}`)
      return layers
    })
    return { ...models, textEncoders: view.textEncoders } satisfies DiffusionModels
  })

const generate = (request: GenerateRequest) =>
  Effect.scoped(
    Effect.gen(function*() {
      const pipeline = yield* Effect.acquireRelease(loadPipeline(request.base.path), (p) => Effect.sync(() => disposePipeline(p)))
      const applied = request.modelDir === undefined
        ? undefined
        : yield* Effect.acquireRelease(
          applyTrainedModel(pipeline, request.modelDir, { useEma: request.generate.useEma }),
          (a) => Effect.sync(() => disposeAdaptation(a.tensors))
        )
      const view = adaptedPipeline(pipeline, applied?.tensors)
      const files = request.adapterFiles ?? []
      const withFiles = files.length === 0
        ? undefined
        : yield* Effect.acquireRelease(applyAdapterFiles(pipeline, yield* modelsOf(view), files), (a) => Effect.sync(() => a.dispose()))
      const declaredControlNet = request.adaptation.controlnet
      const scenes = declaredControlNet === undefined ? undefined : yield* conditionScenes(view, declaredControlNet, request.conditionsDir)
      const spellings = request.adaptation.token?.spellings ?? withFiles?.token?.spellings
      // A multi-vector token is written out as all its tokens, as diffusers' maybe_convert_prompt does.
      const token = spellings?.join(" ")
      yield* generateSamples({
        models: withFiles?.models ?? (yield* modelsOf(view)),
        generate: request.generate,
        ...(token === undefined ? {} : { token }),
        ...(spellings === undefined ? {} : { convertPrompt: (text: string) => spellOutToken(text, spellings) }),
        resolution: request.resolution,
        outDir: request.outDir,
        progress: request.progress,
        ...(scenes === undefined ? {} : { scenes })
      })
    })
  )

export interface EngineOptions {
  /** Overrides SARDINE_BACKEND ("wasm", "cpu", "tensorflow"). */
  readonly backend?: string
}

export const engineLayer = (options: EngineOptions = {}): Layer.Layer<Engine, EngineError, ImageIO> =>
  Layer.effect(
    Engine,
    Effect.gen(function*() {
      const io = yield* ImageIO
      const backend = yield* selectBackend(options.backend ?? process.env.SARDINE_BACKEND).pipe(Effect.mapError(failed("backend")))
      yield* prepareBackendForTraining
      return {
        backend: Effect.succeed(backend),
        initModel: (request) => initModel(request).pipe(Effect.mapError(failed("init-model"))),
        encodeLatents: (request) =>
          encodeLatents(join(request.base.path, "vae"), request.dataDir, request.outDir, (done, total) => request.progress(done, total, "images")).pipe(
            Effect.mapError(failed("encode-latents"))
          ),
        encodeText: (request) =>
          encodeText(request.base.path, request.dataDir, request.outDir, (done, total) => request.progress(done, total, "captions")).pipe(
            Effect.mapError(failed("encode-text"))
          ),
        train: (request) => trainModel({ ...request, base: request.base.path }).pipe(Effect.mapError(failed("train"))),
        trainClip: (request) => trainClipModel({ ...request, out: join(request.workDir, clipModelFolder) }).pipe(Effect.mapError(failed("train-clip"))),
        generate: (request) => generate(request).pipe(Effect.provideService(ImageIO, io), Effect.mapError(failed("generate"))),
        export: (request: ExportRequest) =>
          exportModel({ base: request.base.path, modelDir: request.modelDir, format: request.format, out: request.out, useEma: request.useEma }).pipe(
            Effect.mapError(failed("export"))
          )
      }
    })
  )

/** The engine on the backend SARDINE_BACKEND names, or the fastest available. */
export const EngineLive = engineLayer()
