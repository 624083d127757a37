import { Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import { Console, Effect, Option, Schema } from "effect"
import { dirname, join, resolve } from "node:path"
import { type Declaration, experimentsOf } from "../declaration/experiment.ts"
import { servesExperiment } from "../declaration/replicates.ts"
import { writeFolderAtomic } from "../files/atomic-write.ts"
import type { Plan, StepOf } from "../plan/step.ts"
import { cacheLayout, isDone } from "../runner/cache.ts"
import { clipModelFolder, Engine, type ExportFormat, type ExportSummary } from "../services/engine.ts"
import { pipelineFolder } from "../steps/engine-steps.ts"
import { cacheDirOption } from "./cache-dir.ts"
import { declarationFile } from "./declaration-file.ts"
import { loadPlan } from "./declaration-plan.ts"
import { engineOption } from "./engine-option.ts"
import { type EnginePlan, lookupPlans, trainedPlan, trainStepOf } from "./trained-plan.ts"

export class ExportFailed extends Schema.TaggedError<ExportFailed>()("ExportFailed", {
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}

const formats: ReadonlyArray<ExportFormat | "clip" | "onnx"> = ["diffusers", "kohya", "peft", "embedding", "controlnet", "clip", "onnx"]

const format = Options.choice("format", formats).pipe(
  Options.withDescription(
    "diffusers: the merged pipeline folder; kohya: LoRA as lora_unet_/lora_te*_ safetensors; peft: LoRA as diffusers/PEFT safetensors; embedding: the learned token (textual-inversion file); controlnet: a conditioned experiment's ControlNet (diffusers ControlNetModel folder); clip: a clipModel's trained CLIP (transformers CLIPModel folder); onnx: UNet, VAE decoder and text encoder as ONNX graphs with tokenizer, scheduler config and sardine-onnx.json, for `sardine generate --engine onnx` (written by the torch engine; SD 1.x / 2.x and SDXL, whose second text encoder and tokenizer come too; the base for an untrained experiment)"
  )
)
const out = Options.text("out").pipe(
  Options.map((path) => resolve(path)),
  Options.withDescription("The .safetensors file to write (kohya, peft, embedding) or the new folder (diffusers, controlnet, clip, onnx)")
)
const experimentName = Options.text("experiment").pipe(
  Options.optional,
  Options.withDescription("Which experiment of a study to export (required when the study trains several)")
)

/** Which weights an export wrote, and why when the declaration asked for others. */
const weightsText = (summary: ExportSummary, useEma: boolean): string =>
  summary.weights === "ema"
    ? `EMA weights after step ${summary.step}, as generate.useEma asks`
    : `final weights of step ${summary.step}${
      useEma ? "; generate.useEma asks for the EMA but the training kept none (train.ema)" : ", as generate.useEma: false asks"
    }`

/** A clipModel's trained CLIP: the train-clip step's model folder, copied whole (temporary name, then renamed). */
const exportClip = (file: string, declaration: Declaration, plan: Plan, format: ExportFormat | "clip" | "onnx", out: string, cacheDir: string) =>
  Effect.gen(function*() {
    if (declaration.kind !== "clip" || format !== "clip") {
      return yield* new ExportFailed({
        reason: declaration.kind === "clip"
          ? `${file} declares a CLIP model; export it with --format clip`
          : `--format clip exports a clipModel declaration's CLIP; ${file} declares ${declaration.kind === "study" ? "a study" : "an experiment"}`
      })
    }
    const step = plan.steps.find((s) => s.kind === "train-clip")!
    const cache = cacheLayout(cacheDir)
    if (!(yield* isDone(cache, step.key))) {
      return yield* new ExportFailed({ reason: `${step.id} has not finished (no ${cache.done(step.key)}); run \`sardine run ${file}\` first` })
    }
    const fs = yield* FileSystem.FileSystem
    yield* fs.makeDirectory(dirname(out), { recursive: true }).pipe(
      Effect.zipRight(writeFolderAtomic(out, (temporary) => fs.copy(join(cache.done(step.key), clipModelFolder), temporary), { replace: true })),
      Effect.mapError((e) => new ExportFailed({ reason: `cannot write ${out}: ${e.message}` }))
    )
    yield* Console.log(`${declaration.name}: wrote clip to ${out}`)
  })

/**
 * An experiment's pipeline as ONNX graphs (the torch engine's exporter): its trained model merged into the
 * base, or the base as it is for an experiment that trains nothing (a baseline). SD 1.x / 2.x and SDXL; no ControlNet.
 */
const exportOnnx = (
  file: string,
  declaration: Declaration,
  plans: ReadonlyArray<EnginePlan>,
  directory: string,
  wanted: string | undefined,
  out: string,
  cacheDir: string
) =>
  Effect.gen(function*() {
    const experiments = experimentsOf(declaration)
    const chosen = wanted === undefined ? experiments : experiments.filter((e) => e.name === wanted)
    const names = experiments.map((e) => e.name).join(", ") || "none"
    if (chosen.length !== 1) {
      return yield* new ExportFailed({
        reason: wanted === undefined
          ? `${file} declares ${experiments.length} experiments (${names}); name one with --experiment`
          : `--experiment ${wanted}: no experiment of that name in ${file} (it declares ${names})`
      })
    }
    const target = chosen[0]!
    if (target.conditioning !== undefined) {
      return yield* new ExportFailed({ reason: `--format onnx: ${target.name} is conditioned on a ControlNet, which the ONNX export does not carry` })
    }
    const cache = cacheLayout(cacheDir)
    const notDone = (id: string, key: string) =>
      new ExportFailed({ reason: `${id} has not finished (no ${cache.done(key)}); run \`sardine run ${file}\` first` })
    const { plan } = target.baseline ? plans[0]! : yield* trainedPlan(plans, target.name, cacheDir)
    const train = target.baseline ? undefined : trainStepOf(plan.steps, target.name)
    const generate = plan.steps.find((s): s is StepOf<"generate"> => s.kind === "generate" && servesExperiment(s.experiments, target.name))
    // A base made by an init-model or merge-model step is in that step's output.
    const madeBaseId = (train ?? generate)?.inputs.find((i) => i.role === "base")?.step
    const madeBase = plan.steps.find((s) => s.id === madeBaseId)
    if (madeBase !== undefined && !(yield* isDone(cache, madeBase.key))) return yield* notDone(madeBase.id, madeBase.key)
    if (train !== undefined && !(yield* isDone(cache, train.key))) return yield* notDone(train.id, train.key)
    const basePath = madeBase !== undefined
      ? join(cache.done(madeBase.key), pipelineFolder)
      : resolve(directory, target.base._tag === "diffusers" ? target.base.path : ".")
    const engine = yield* Engine
    if (engine.exportOnnx === undefined) {
      return yield* new ExportFailed({ reason: "--format onnx: no engine here has an ONNX exporter (the torch engine does)" })
    }
    const summary = yield* engine.exportOnnx({
      base: { base: target.base, path: basePath },
      ...(train === undefined ? {} : { modelDir: cache.done(train.key) }),
      useEma: target.generate.useEma,
      out
    })
    const weights = summary.trained === undefined ? "the base as it is: it trains nothing" : weightsText(summary.trained, target.generate.useEma)
    yield* Console.log(
      `${target.name}: wrote onnx (opset ${summary.opset}, float32) to ${out} (${weights}); sample it with \`sardine generate ${out} --engine onnx\``
    )
    for (const note of summary.trained?.notes ?? []) yield* Console.log(`  note: ${note}`)
  })

export const exportCommand = Command.make(
  "export",
  { file: declarationFile, format, out, cacheDir: cacheDirOption, experiment: experimentName, engine: engineOption },
  ({ cacheDir, engine: engineChoice, experiment, file, format, out }) =>
    Effect.gen(function*() {
      const { engine: defaultEngine, loaded, plan: defaultPlan } = yield* loadPlan(file, { engine: engineChoice, cacheDir })
      if (format === "clip" || loaded.declaration.kind === "clip") return yield* exportClip(file, loaded.declaration, defaultPlan, format, out, cacheDir)
      const plans = yield* lookupPlans(loaded, engineChoice, { engine: defaultEngine, plan: defaultPlan }, cacheDir)
      if (format === "onnx") return yield* exportOnnx(file, loaded.declaration, plans, loaded.directory, Option.getOrUndefined(experiment), out, cacheDir)
      const trained = experimentsOf(loaded.declaration).filter((e) => !e.baseline && e.train !== undefined)
      const wanted = Option.getOrUndefined(experiment)
      const chosen = wanted === undefined ? trained : trained.filter((e) => e.name === wanted)
      const target = chosen.length === 1 ? chosen[0] : undefined
      if (target === undefined) {
        const names = trained.map((e) => e.name).join(", ") || "none"
        return yield* new ExportFailed({
          reason: wanted === undefined
            ? `${file} trains ${trained.length} experiments (${names}); name one with --experiment`
            : `--experiment ${wanted}: no trained experiment of that name in ${file} (trained: ${names})`
        })
      }
      const { engine: computedBy, plan } = yield* trainedPlan(plans, target.name, cacheDir)
      const step = trainStepOf(plan.steps, target.name)
      if (step === undefined) return yield* new ExportFailed({ reason: `${target.name} has no train step` })
      const cache = cacheLayout(cacheDir)
      // A base made by an init-model or merge-model step is in that step's output.
      const madeBase = step.inputs.find((i) => i.role === "base")
      const basePath = madeBase !== undefined
        ? join(cache.done(plan.steps.find((s) => s.id === madeBase.step)!.key), pipelineFolder)
        : resolve(loaded.directory, target.base._tag === "diffusers" ? target.base.path : ".")
      if (!(yield* isDone(cache, step.key))) {
        return yield* new ExportFailed({
          reason: `${step.id} has not finished (no ${cache.done(step.key)}); run \`sardine run ${file}\` first`
        })
      }
      const engine = yield* Engine
      const summary = yield* engine.export({
        base: { base: target.base, path: basePath },
        modelDir: cache.done(step.key),
        format,
        out,
        useEma: target.generate.useEma,
        engine: computedBy
      })
      yield* Console.log(`${target.name}: wrote ${format} to ${out} (${weightsText(summary, target.generate.useEma)})`)
      for (const note of summary.notes) yield* Console.log(`  note: ${note}`)
    })
).pipe(
  Command.withDescription(
    "Export an experiment's trained model (found in the cache through its plan) for other tools: merged diffusers pipeline, kohya or PEFT LoRA (adapters only: a fully trained component needs --format diffusers), the learned token's embedding, or ONNX graphs for onnxruntime (also of an untrained experiment's base). The weights are those generate.useEma names (the EMA when training kept one, else the final weights); the output says which. The training is found whichever engine made it; --engine picks one when both did."
  )
)
