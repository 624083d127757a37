import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect } from "effect"
import { join } from "node:path"
import type { ExportFormat, ExportSummary } from "../../../framework/services/engine.ts"
import { writeFolderAtomically } from "../../files/atomic-write-node.ts"
import type { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { pathExists, withNodeFileSystem } from "../node-file-system.ts"
import { disposePipeline, loadPipeline, readPipelineArchitecture, type LoadError } from "../pipeline-loader.ts"
import { disposeAdaptation } from "../training/trainable-model.ts"
import type { DataFolderError } from "../training/index-files.ts"
import {
  applyTrainedModel,
  controlNetFolderOf,
  type ModelManifest,
  readModelManifest,
  trainedTensorReader,
  weightsUsed
} from "../training/trained-model-files.ts"
import { ExportError } from "./export-error.ts"
import { loraParts, writeKohyaLora, writePeftLora } from "./lora-files.ts"
import { MERGED_CONTROLNET_FOLDER, writeMergedPipeline } from "./merged-pipeline.ts"
import { writeTextualInversion } from "./textual-inversion-file.ts"
import { fileProblem, isNotFound } from "../../../framework/files/file-errors.ts"

export interface ExportRun {
  /** The base pipeline folder the model was trained from. */
  readonly base: string
  /** A train step's output folder. */
  readonly modelDir: string
  readonly format: ExportFormat
  /** A .safetensors file (kohya, peft, embedding) or a new folder (diffusers, controlnet). */
  readonly out: string
  /** Export the EMA weights when the model kept them (the declaration's `generate.useEma`), else the final ones. */
  readonly useEma: boolean
}

export type ExportFailure = ExportError | DataFolderError | SafetensorsError | LoadError

const fsFailure = (format: ExportFormat, what: string) => (e: PlatformError) => new ExportError({ format, reason: `${what}: ${fileProblem(e)}`, cause: e })

/** Whether `--out` is taken (export never writes over anything). */
const outTaken = (run: ExportRun) => pathExists(run.out).pipe(Effect.mapError(fsFailure(run.format, `cannot look at ${run.out}`)))

/** Writes a trained model in one of the formats other tools load; says which weights it wrote and what users must know. */
export const exportModel = (run: ExportRun): Effect.Effect<ExportSummary, ExportFailure> =>
  Effect.scoped(
    Effect.gen(function*() {
      const manifest = yield* readModelManifest(run.modelDir)
      const summary = (notes: ReadonlyArray<string>): ExportSummary => ({ weights: weightsUsed(manifest, run.useEma), step: manifest.steps, notes })
      if (run.format === "controlnet") return summary(yield* writeTrainedControlNet(run, manifest))
      if (run.format === "diffusers") {
        // Checked before loading anything: the base may be gigabytes.
        if (yield* outTaken(run)) return yield* new ExportError({ format: "diffusers", reason: `${run.out} already exists; choose a new --out folder` })
        const pipeline = yield* Effect.acquireRelease(loadPipeline(run.base), (p) => Effect.sync(() => disposePipeline(p)))
        const { tensors } = yield* Effect.acquireRelease(
          applyTrainedModel(pipeline, run.modelDir, { useEma: run.useEma }),
          (applied) => Effect.sync(() => disposeAdaptation(applied.tensors))
        )
        const controlnet = manifest.adaptation.controlnet === undefined ? undefined : controlNetSource(run, manifest)
        yield* writeMergedPipeline(pipeline, tensors, run.out, controlnet)
        const token = manifest.adaptation.token
        return summary([
          ...(token === null || token.vectors === 1 ? [] : [
            `${token.token} has ${token.vectors} vectors (${token.spellings.join(", ")}); the exported tokenizers match it exactly as written, ` +
            `so diffusers expands "${token.token}" in prompts to all of them`
          ]),
          ...(controlnet === undefined ? [] : [controlNetBesideNote(run.out)])
        ])
      }
      const isFolder = yield* withNodeFileSystem((fs) => fs.stat(run.out)).pipe(
        Effect.map((info) => info.type === "Directory"),
        Effect.catchIf(isNotFound, () => Effect.succeed(false)),
        Effect.mapError(fsFailure(run.format, `cannot look at ${run.out}`))
      )
      if (isFolder) return yield* new ExportError({ format: run.format, reason: `${run.out} is a folder; --out names the .safetensors file to write` })
      const read = yield* trainedTensorReader(run.modelDir, manifest, run.useEma)
      if (run.format === "embedding") return summary(yield* writeTextualInversion(manifest, read, run.out))
      const { notes, parts } = yield* loraParts(run.format, manifest, yield* readPipelineArchitecture(run.base))
      yield* run.format === "kohya" ? writeKohyaLora(manifest, parts, read, run.out) : writePeftLora(parts, read, run.out)
      return summary(notes)
    })
  )

/** The trained ControlNet folder of the weights the export writes (the EMA's with useEma when kept). */
const controlNetSource = (run: ExportRun, manifest: ModelManifest) => controlNetFolderOf(run.modelDir, manifest, run.useEma)

/** What users of a merged export of a conditioned experiment must know (both engines write `controlnet/` beside the pipeline). */
export const controlNetBesideNote = (out: string) =>
  `the trained ControlNet is in ${join(out, MERGED_CONTROLNET_FOLDER)}: load it with ControlNetModel.from_pretrained(that folder) and pass it ` +
  `as controlnet= to StableDiffusion(XL)ControlNetPipeline.from_pretrained(${out}); the pipeline alone loads as the plain text-to-image pipeline`

/**
 * A conditioned experiment's trained ControlNet as a diffusers ControlNetModel folder: the one its train
 * step wrote (LoRA merged; the EMA's with useEma when kept), copied under a temporary name, then renamed.
 */
const writeTrainedControlNet = (run: ExportRun, manifest: ModelManifest) =>
  Effect.gen(function*() {
    if (manifest.adaptation.controlnet === undefined) {
      return yield* new ExportError({ format: "controlnet", reason: "the experiment trains no ControlNet (it declares no conditioning: controlNet({ … }))" })
    }
    if (yield* outTaken(run)) return yield* new ExportError({ format: "controlnet", reason: `${run.out} already exists; choose a new --out folder` })
    const source = controlNetSource(run, manifest)
    yield* writeFolderAtomically(run.out, (temporary) => Effect.flatMap(FileSystem.FileSystem, (fs) => fs.copy(source, temporary))).pipe(
      Effect.mapError(fsFailure("controlnet", `cannot copy ${source} to ${run.out}`))
    )
    return ["load it with ControlNetModel.from_pretrained(folder) and pass it to StableDiffusion(XL)ControlNetPipeline with the base"]
  })
