import { Effect } from "effect"
import { readdir, readFile } from "node:fs/promises"
import { basename, join } from "node:path"
import { cacheLayout, readManifestIn, type StepManifest } from "../framework/runner/cache.ts"
import { validationFolder } from "../framework/services/engine.ts"
import { ReportError, type ReportedStrategy, type ReportRequest, type ReportTracking } from "../framework/services/report-renderer.ts"
import { evaluationFile, type EvaluationResult } from "../framework/steps/evaluation-result.ts"
import { readTrainingLog, type TrainingLogLine } from "../framework/steps/training-log.ts"
import { SARDINE_BACKEND } from "../framework/tracking/system-tags.ts"
import { strategyColour } from "./strategy-colours.ts"

/** Everything the report shows about one strategy, read once from the cache. */
export interface StrategyResult {
  readonly name: string
  readonly strategy: ReportedStrategy
  readonly colour: string
  readonly evaluation: EvaluationResult
  readonly evaluationDir: string
  readonly evaluationKey: string
  /** Manifests of the steps behind the evaluation; absent when the cache no longer holds them. */
  readonly steps: { readonly evaluate?: StepManifest; readonly generate?: StepManifest; readonly train?: StepManifest }
  readonly trainingLog: ReadonlyArray<TrainingLogLine>
  /** The images of `train.validationPrompts` its train step kept (torch engine), by step then prompt. */
  readonly validationImages: ReadonlyArray<ValidationImage>
  readonly backend?: string
  readonly runId?: string
}

export interface StudyResults {
  readonly study: string
  readonly cacheDir: string
  readonly strategies: ReadonlyArray<StrategyResult>
  /** The experiment marked `baseline: true` (the first, when several are). */
  readonly baseline?: StrategyResult
  readonly tracking?: ReportTracking & { readonly kind: "server" | "folder" }
}

/** Fields the renderers rely on; a file without them is named rather than crashing a chart. */
const requiredPaths = [
  "generated.statistics", "reference.statistics", "amplitude.domain", "amplitude.bins", "amplitude.range", "amplitude.distances",
  "amplitude.generatedDistribution.density", "amplitude.referenceDistribution.density", "amplitude.generatedDistribution.quantiles",
  "amplitude.referenceDistribution.quantiles", "texture.generated", "texture.reference", "previews.generated", "previews.reference",
  "lineage.generate", "lineage.reference"
]

const missingField = (value: unknown): string | undefined =>
  requiredPaths.find((path) => {
    let node: unknown = value
    for (const part of path.split(".")) {
      if (node === null || typeof node !== "object") return true
      node = (node as Record<string, unknown>)[part]
    }
    return node === undefined || node === null
  })

const readEvaluation = (dir: string): Effect.Effect<EvaluationResult, ReportError> => {
  const file = join(dir, evaluationFile)
  return Effect.tryPromise({
    try: async () => JSON.parse(await readFile(file, "utf8")) as unknown,
    catch: (e) => new ReportError({ path: file, reason: `cannot read the evaluation: ${(e as Error).message}` })
  }).pipe(
    Effect.flatMap((json) => {
      const missing = missingField(json)
      return missing === undefined
        ? Effect.succeed(json as EvaluationResult)
        : Effect.fail(new ReportError({ path: file, reason: `is not an evaluation result: ${missing} is missing` }))
    })
  )
}

export interface ValidationImage {
  readonly step: number
  readonly prompt: string
  /** The PNG, absolute. */
  readonly file: string
}

/** The validation images in a train step's output: `validation/step-<n>/p<prompt index>.png`. */
export const validationImagesIn = (trainDir: string, prompts: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const folder = join(trainDir, validationFolder)
    const steps = await readdir(folder).catch(() => [] as Array<string>)
    const images: Array<ValidationImage> = []
    for (const stepFolder of steps.filter((s) => /^step-\d+$/.test(s)).sort()) {
      for (const file of (await readdir(join(folder, stepFolder))).filter((f) => /^p\d+\.png$/.test(f)).sort()) {
        images.push({ step: Number(stepFolder.slice(5)), prompt: prompts[Number(file.slice(1, -4))] ?? file, file: join(folder, stepFolder, file) })
      }
    }
    return images
  })

/** A manifest of the cache, or nothing when the step is not (any more) there. */
const manifestOf = (cacheDir: string, key: string | undefined) =>
  key === undefined ? Effect.succeed(undefined) : readManifestIn(cacheLayout(cacheDir).done(key)).pipe(Effect.orElseSucceed(() => undefined))

const isServer = (target: string) => /^https?:\/\//i.test(target)

/** The backend tag of a run in a local MLflow folder (DESIGN §8 layout: <root>/<exp>/<run>/tags/<key>). */
const backendTag = (tracking: ReportTracking, runId: string) =>
  Effect.promise(() =>
    readFile(join(tracking.target, tracking.experimentId, runId, "tags", SARDINE_BACKEND), "utf8").then((t) => t.trim(), () => undefined)
  )

/** Reads every evaluation of the request and what lies behind it in the cache (manifests, training logs). */
export const loadStudyResults = (request: ReportRequest): Effect.Effect<StudyResults, ReportError> =>
  Effect.gen(function*() {
    if (request.experiments.length === 0) {
      return yield* new ReportError({ path: request.outDir, reason: "the study has no finished evaluation to report" })
    }
    const tracking = request.tracking
    const strategies = yield* Effect.forEach(request.experiments, ({ evaluationDir, experiment }, index) =>
      Effect.gen(function*() {
        const evaluation = yield* readEvaluation(evaluationDir)
        const evaluate = yield* readManifestIn(evaluationDir).pipe(Effect.orElseSucceed(() => undefined))
        const generate = yield* manifestOf(request.cacheDir, evaluation.lineage.generate)
        const train = yield* manifestOf(request.cacheDir, evaluation.lineage.train)
        const trainDir = evaluation.lineage.train === undefined ? undefined : cacheLayout(request.cacheDir).done(evaluation.lineage.train)
        const trainingLog = trainDir === undefined ? [] : yield* readTrainingLog(trainDir)
        const validationImages = trainDir === undefined ? [] : yield* validationImagesIn(trainDir, experiment.train?.validationPrompts ?? [])
        const runId = tracking?.runIds[experiment.name]
        const backend = request.backend ??
          (tracking !== undefined && runId !== undefined && !isServer(tracking.target) ? yield* backendTag(tracking, runId) : undefined)
        const result: StrategyResult = {
          name: experiment.name,
          strategy: experiment,
          colour: strategyColour(index),
          evaluation,
          evaluationDir,
          evaluationKey: basename(evaluationDir),
          steps: { evaluate, generate, train },
          trainingLog,
          validationImages,
          ...(backend === undefined ? {} : { backend }),
          ...(runId === undefined ? {} : { runId })
        }
        return result
      }))
    return {
      study: request.study,
      cacheDir: request.cacheDir,
      strategies,
      baseline: strategies.find((s) => s.strategy.baseline),
      ...(tracking === undefined ? {} : { tracking: { ...tracking, kind: isServer(tracking.target) ? "server" as const : "folder" as const } })
    }
  })
