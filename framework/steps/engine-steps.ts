import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import { join } from "node:path"
import type { BaseModel } from "../declaration/base-model.ts"
import { trainNodes, trainProcesses } from "../declaration/resources.ts"
import type { StepContext } from "../runner/step-handler.ts"
import { type ComputedBy, validationDataRole, validationRole } from "../plan/step.ts"
import { Engine, type EngineSelection, samplesIndexFile, type GeneratedSample } from "../services/engine.ts"
import { readJson } from "./json-files.ts"
import { appendTrainingLog, finishTrainingLog } from "./training-log.ts"

/** The steps the engine does: encoding with frozen encoders, training, sampling. */

/** The engine a step's config names (the tfjs engine's configs name none). */
const computedBy = (config: ComputedBy): EngineSelection => (config.engine === undefined ? {} : { engine: config.engine })

/** Where init-model and merge-model put the pipeline inside their output folder. */
export const pipelineFolder = "pipeline"

/** The base pipeline a step reads: the declared folder, or the one an init-model / merge-model step made. */
const resolvedBase = (context: {
  readonly step: { readonly config: { readonly base: BaseModel } }
  readonly resolvePath: (path: string) => string
  readonly inputs: StepContext["inputs"]
}) => {
  const { base } = context.step.config
  const made = context.inputs("base")
  return {
    base,
    path: made.length === 1 ? join(made[0]!.dir, pipelineFolder) : context.resolvePath(base._tag === "diffusers" ? base.path : ".")
  }
}

export const initModel = (context: StepContext<"init-model">) =>
  Effect.flatMap(Engine, (engine) => {
    const { base } = context.step.config
    return engine.initModel({
      architecture: context.resolvePath(base.architecture),
      family: base.family,
      seed: base.seed,
      out: join(context.workDir, pipelineFolder),
      ...computedBy(context.step.config)
    })
  })

export const mergeModel = (context: StepContext<"merge-model">) =>
  Effect.flatMap(Engine, (engine) =>
    engine.export({
      base: resolvedBase(context),
      modelDir: context.input("model").dir,
      format: "diffusers",
      out: join(context.workDir, pipelineFolder),
      useEma: context.step.config.useEma,
      ...computedBy(context.step.config)
    }))

export const encodeLatents = (context: StepContext<"encode-latents">) =>
  Effect.flatMap(Engine, (engine) =>
    engine.encodeLatents({
      base: resolvedBase(context),
      dataDir: context.input("data").dir,
      outDir: context.workDir,
      progress: context.progress,
      ...computedBy(context.step.config)
    }))

export const encodeText = (context: StepContext<"encode-text">) =>
  Effect.flatMap(Engine, (engine) =>
    engine.encodeText({
      base: resolvedBase(context),
      dataDir: context.input("data").dir,
      outDir: context.workDir,
      progress: context.progress,
      ...computedBy(context.step.config)
    }))

/**
 * Where a training writes: its work folder, progress, and metrics to both the training log and MLflow.
 * An engine's metric sink cannot fail (MetricSink): a training log that cannot be written stops the
 * training as a defect that names the file.
 */
const trainingSinks = (context: Pick<StepContext, "workDir" | "progress" | "tracking" | "log">, fs: FileSystem.FileSystem) => ({
  workDir: context.workDir,
  progress: context.progress,
  metrics: (step: number, values: Readonly<Record<string, number>>) =>
    Effect.zipRight(
      appendTrainingLog(context.workDir, step, values).pipe(Effect.provideService(FileSystem.FileSystem, fs), Effect.orDie),
      context.tracking.metrics(step, values)
    ),
  log: context.log
})

export const train = (context: StepContext<"train">) =>
  Effect.gen(function*() {
    const engine = yield* Engine
    const { adaptation, train } = context.step.config
    const latents = context.inputs("latents")
    const text = context.inputs("text")
    const init = adaptation.controlnet?.init
    const heldOut = context.inputs(validationDataRole)
    const heldOutLatents = context.inputs(validationRole("latents"))
    const heldOutText = context.inputs(validationRole("text"))
    yield* engine.train({
      base: resolvedBase(context),
      adaptation,
      train,
      ...(init === undefined || init === "unet" ? {} : { controlNetFolder: context.resolvePath(init) }),
      dataDir: context.input("data").dir,
      ...(latents.length === 1 ? { latentsDir: latents[0]!.dir } : {}),
      ...(text.length === 1 ? { textDir: text[0]!.dir } : {}),
      ...(heldOut.length === 1
        ? {
          validation: {
            dataDir: heldOut[0]!.dir,
            ...(heldOutLatents.length === 1 ? { latentsDir: heldOutLatents[0]!.dir } : {}),
            ...(heldOutText.length === 1 ? { textDir: heldOutText[0]!.dir } : {})
          }
        }
        : {}),
      // On the tfjs engine the plan refused a declared process count; one per GPU is the torch engine's default.
      ...(context.step.config.engine === "torch"
        ? { processes: trainProcesses(context.resources), nodes: trainNodes(context.resources), sharding: context.resources.sharding ?? "none" }
        : {}),
      ...trainingSinks(context, yield* FileSystem.FileSystem),
      image: (key, step, file) => context.tracking.image(key, step, file),
      ...computedBy(context.step.config)
    })
    yield* finishTrainingLog(context.workDir)
  })

export const trainClip = (context: StepContext<"train-clip">) =>
  Effect.gen(function*() {
    const engine = yield* Engine
    const { architecture, seed, train } = context.step.config
    yield* engine.trainClip({
      architecture: context.resolvePath(architecture),
      seed,
      train,
      dataDirs: context.inputs("data").map((input) => input.dir),
      ...trainingSinks(context, yield* FileSystem.FileSystem)
    })
    yield* finishTrainingLog(context.workDir)
  })

/** A slug of a prompt for MLflow's image series: letters, digits and dashes. */
const seriesKey = (index: number, prompt: string) =>
  `samples/${String(index).padStart(2, "0")}-${prompt.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 60)}`

export const generate = (context: StepContext<"generate">) =>
  Effect.gen(function*() {
    const engine = yield* Engine
    const model = context.inputs("model")
    const conditions = context.inputs("conditions")
    yield* engine.generate({
      base: resolvedBase(context),
      adaptation: context.step.config.adaptation,
      generate: context.step.config.generate,
      ...(model.length === 1 ? { modelDir: model[0]!.dir } : {}),
      ...(conditions.length === 1 ? { conditionsDir: conditions[0]!.dir } : {}),
      // Normalisation made the resolution explicit (the training data's, unless declared).
      resolution: context.step.config.generate.resolution ?? 0,
      outDir: context.workDir,
      progress: context.progress,
      ...computedBy(context.step.config)
    })
    const samples = yield* readJson<ReadonlyArray<GeneratedSample>>(join(context.workDir, samplesIndexFile))
    let n = 0
    for (const sample of samples) {
      yield* context.tracking.image(seriesKey(sample.promptIndex, sample.declaredPrompt), n++, join(context.workDir, sample.png))
    }
  })
