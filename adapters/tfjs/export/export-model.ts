import { Effect } from "effect"
import { stat } from "node:fs/promises"
import type { ExportFormat } from "../../../framework/services/engine.ts"
import type { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { disposePipeline, loadPipeline, type LoadError } from "../pipeline-loader.ts"
import { disposeAdaptation } from "../training/trainable-model.ts"
import type { DataFolderError } from "../training/index-files.ts"
import { applyTrainedModel, readModelManifest, trainedTensorReader } from "../training/trained-model-files.ts"
import { ExportError } from "./export-error.ts"
import { writeKohyaLora, writePeftLora } from "./lora-files.ts"
import { writeMergedPipeline } from "./merged-pipeline.ts"
import { writeTextualInversion } from "./textual-inversion-file.ts"

export interface ExportRun {
  /** The base pipeline folder the model was trained from. */
  readonly base: string
  /** A train step's output folder. */
  readonly modelDir: string
  readonly format: ExportFormat
  /** A .safetensors file (kohya, peft, embedding) or a new folder (diffusers). */
  readonly out: string
  /** Export the EMA weights when the model kept them (what generation uses by default). */
  readonly useEma: boolean
}

export type ExportFailure = ExportError | DataFolderError | SafetensorsError | LoadError

/** Writes a trained model in one of the formats other tools load. */
export const exportModel = (run: ExportRun): Effect.Effect<void, ExportFailure> =>
  Effect.scoped(
    Effect.gen(function*() {
      const manifest = yield* readModelManifest(run.modelDir)
      if (run.format === "diffusers") {
        // Checked before loading anything: the base may be gigabytes.
        const exists = yield* Effect.promise(() => stat(run.out).then(() => true, () => false))
        if (exists) return yield* new ExportError({ format: "diffusers", reason: `${run.out} already exists; choose a new --out folder` })
        const pipeline = yield* Effect.acquireRelease(loadPipeline(run.base), (p) => Effect.sync(() => disposePipeline(p)))
        const { adaptation } = yield* Effect.acquireRelease(
          applyTrainedModel(pipeline, run.modelDir, { useEma: run.useEma }),
          (applied) => Effect.sync(() => disposeAdaptation(applied.adaptation))
        )
        return yield* writeMergedPipeline(pipeline, adaptation, run.out)
      }
      const isFolder = yield* Effect.promise(() => stat(run.out).then((s) => s.isDirectory(), () => false))
      if (isFolder) return yield* new ExportError({ format: run.format, reason: `${run.out} is a folder; --out names the .safetensors file to write` })
      const read = yield* trainedTensorReader(run.modelDir, manifest, run.useEma)
      switch (run.format) {
        case "kohya":
          return yield* writeKohyaLora(manifest, read, run.out)
        case "peft":
          return yield* writePeftLora(manifest, read, run.out)
        case "embedding":
          return yield* writeTextualInversion(manifest, read, run.out)
      }
    })
  )
