import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import { join } from "node:path"
import type { EvaluationEvidence } from "../metrics/evaluation-evidence.ts"
import type { UncertaintySettings } from "../metrics/evaluation-intervals.ts"
import { intervalKeys, TRACKED_METRICS } from "../metrics/metric-catalog.ts"
import { comparePairedMetrics, pairUnits } from "../metrics/paired-intervals.ts"
import { estimateDefinitions } from "../metrics/resampled-estimates.ts"
import { type StudyStatistics, studyStatistics } from "../metrics/study-statistics.ts"
import { manifestName, readManifestIn } from "../runner/cache.ts"
import {
  type RenderedReport,
  ReportError,
  type ReportedExperiment,
  type ReportedReplicate,
  type ReportedStrategy,
  ReportRenderer,
  type ReportTracking
} from "../services/report-renderer.ts"
import { decodeEvidence, estimatesFromJson, evaluationFile, type EvaluationResult, evidenceFile } from "./evaluation-result.ts"
import { readTrainingLog } from "./training-log.ts"
import { validationImagesIn } from "./validation-images.ts"

/**
 * A study's results as the report takes them, read from the output folders of its steps (the
 * report step gets them as its inputs; `sardine report` finds them in the cache): each replicate's
 * evaluation and evidence, its steps' manifests, its training log; then the study's statistics.
 */

/** Output folders of one replicate's evaluate, generate and train steps. */
export interface ReplicateDirs {
  readonly name: string
  readonly replicate: number
  readonly evaluation: string
  readonly samples?: string
  readonly training?: string
}

export interface ExperimentDirs {
  readonly experiment: ReportedStrategy
  readonly replicates: ReadonlyArray<ReplicateDirs>
}

/** Fields the renderers rely on; a file without them is named rather than crashing a chart. */
const requiredPaths = [
  "estimates",
  "uncertainty.level",
  "generated.statistics",
  "reference.statistics",
  "amplitude.domain",
  "amplitude.bins",
  "amplitude.range",
  "amplitude.distances",
  "amplitude.generatedDistribution.density",
  "amplitude.referenceDistribution.density",
  "amplitude.generatedDistribution.quantiles",
  "amplitude.referenceDistribution.quantiles",
  "texture.generated",
  "texture.reference",
  "promptReadings",
  "previews.generated",
  "previews.reference",
  "lineage.generate",
  "lineage.reference"
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

const readJsonOf = (file: string, what: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(file)).pipe(
    Effect.flatMap((text) => Effect.try(() => JSON.parse(text) as unknown)),
    Effect.mapError((e) => new ReportError({ path: file, reason: `cannot read the ${what}: ${e.message}` }))
  )

const readEvaluation = (dir: string): Effect.Effect<EvaluationResult, ReportError, FileSystem.FileSystem> => {
  const file = join(dir, evaluationFile)
  return Effect.flatMap(readJsonOf(file, "evaluation"), (json) => {
    const missing = missingField(json)
    if (missing !== undefined) {
      return Effect.fail(new ReportError({ path: file, reason: `is not an evaluation result of this sardine version: ${missing} is missing` }))
    }
    const evaluation = json as EvaluationResult
    // A conditioned evaluation of an earlier version has no intervals or scene previews to show.
    const pairedMissing = evaluation.paired === undefined ? undefined : (["intervals", "scenes"] as const).find((f) => !(f in evaluation.paired!))
    if (pairedMissing !== undefined) {
      return Effect.fail(new ReportError({ path: file, reason: `is not an evaluation result of this sardine version: paired.${pairedMissing} is missing` }))
    }
    const paired = evaluation.paired === undefined ? {} : { paired: { ...evaluation.paired, intervals: estimatesFromJson(evaluation.paired.intervals) } }
    return Effect.succeed({ ...evaluation, estimates: estimatesFromJson(evaluation.estimates), ...paired })
  })
}

const readEvidence = (dir: string): Effect.Effect<EvaluationEvidence, ReportError, FileSystem.FileSystem> => {
  const file = join(dir, evidenceFile)
  return Effect.flatMap(
    readJsonOf(file, "evaluation's evidence"),
    (json) => Effect.try({ try: () => decodeEvidence(json), catch: (e) => new ReportError({ path: file, reason: (e as Error).message }) })
  )
}

/** A step's manifest when its folder has one (an output committed before sardine wrote manifests has none). */
const manifestOf = (dir: string | undefined) =>
  Effect.gen(function*() {
    if (dir === undefined) return undefined
    const file = join(dir, manifestName)
    const present = yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.exists(file)).pipe(
      Effect.mapError((e) => new ReportError({ path: file, reason: `cannot read the step manifest: ${e.message}` }))
    )
    return present ? yield* readManifestIn(dir).pipe(Effect.mapError((e) => new ReportError({ path: e.path, reason: e.reason }))) : undefined
  })

export interface LoadedStudy {
  readonly experiments: ReadonlyArray<ReportedExperiment>
  /** Per experiment, per replicate: what comparisons resample. */
  readonly evidence: ReadonlyArray<ReadonlyArray<EvaluationEvidence>>
}

export const loadStudy = (experiments: ReadonlyArray<ExperimentDirs>): Effect.Effect<LoadedStudy, ReportError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const loaded = yield* Effect.forEach(experiments, ({ experiment, replicates }) =>
      Effect.forEach(replicates, (dirs) =>
        Effect.gen(function*() {
          const replicate: ReportedReplicate = {
            name: dirs.name,
            replicate: dirs.replicate,
            evaluation: yield* readEvaluation(dirs.evaluation),
            evaluationDir: dirs.evaluation,
            steps: {
              ...(yield* manifestOf(dirs.evaluation).pipe(Effect.map((m) => (m === undefined ? {} : { evaluate: m })))),
              ...(yield* manifestOf(dirs.samples).pipe(Effect.map((m) => (m === undefined ? {} : { generate: m })))),
              ...(yield* manifestOf(dirs.training).pipe(Effect.map((m) => (m === undefined ? {} : { train: m }))))
            },
            trainingLog: dirs.training === undefined
              ? []
              : yield* readTrainingLog(dirs.training).pipe(Effect.mapError((e) => new ReportError({ path: e.file, reason: e.reason }))),
            validationImages: dirs.training === undefined
              ? []
              : yield* validationImagesIn(dirs.training, experiment.train?.validationPrompts ?? []).pipe(
                Effect.mapError((e) => new ReportError({ path: dirs.training ?? "", reason: `cannot list the validation images: ${e.message}` }))
              )
          }
          return { replicate, evidence: yield* readEvidence(dirs.evaluation) }
        })).pipe(Effect.map((rs) => ({ experiment: { experiment, replicates: rs.map((r) => r.replicate) }, evidence: rs.map((r) => r.evidence) }))))
    return { experiments: loaded.map((l) => l.experiment), evidence: loaded.map((l) => l.evidence) }
  })

/** Whether two evaluations' reference evidence holds the same real images (same content, read the same way). */
const sameReference = (a: EvaluationEvidence["reference"], b: EvaluationEvidence["reference"]) => {
  const bytes = (array: Float32Array | Float64Array) => Buffer.from(array.buffer, array.byteOffset, array.byteLength)
  return a.images === b.images && a.pixels === b.pixels && bytes(a.atoms).equals(bytes(b.atoms)) && bytes(a.histogram).equals(bytes(b.histogram)) &&
    bytes(a.glcm).equals(bytes(b.glcm))
}

/**
 * An external evaluation (`sardine evaluate`) names its reference set by content, a study's steps by
 * their cache key: where the real images are the same, the external one takes the study's key, so
 * that it is compared with the strategies; otherwise comparisons say they use different reference sets.
 */
export const withStudyReferences = (loaded: LoadedStudy): LoadedStudy => {
  const studyOwn = loaded.experiments.flatMap((e, i) => (e.experiment.external === undefined ? loaded.evidence[i] ?? [] : []))
  const aligned = loaded.experiments.map((experiment, i) => {
    const evidence = loaded.evidence[i] ?? []
    if (experiment.experiment.external === undefined) return { experiment, evidence }
    const keys = evidence.map((own) => studyOwn.find((s) => sameReference(s.reference, own.reference))?.referenceKey ?? own.referenceKey)
    return {
      experiment: {
        ...experiment,
        replicates: experiment.replicates.map((r, k) => {
          const reference = keys[k] ?? r.evaluation.lineage.reference
          return { ...r, evaluation: { ...r.evaluation, lineage: { ...r.evaluation.lineage, reference } } }
        })
      },
      evidence: evidence.map((own, k) => ({ ...own, referenceKey: keys[k] ?? own.referenceKey }))
    }
  })
  return { experiments: aligned.map((a) => a.experiment), evidence: aligned.map((a) => a.evidence) }
}

/** Each strategy's intervals, the comparisons with the baseline and the declared pairs, the significant bests. */
export const statisticsOf = (
  loaded: LoadedStudy,
  compare: ReadonlyArray<readonly [string, string]>,
  progress?: (pair: string, done: number, total: number) => Effect.Effect<void>
): Effect.Effect<StudyStatistics> => {
  const first = loaded.experiments[0]!.replicates[0]!.evaluation.uncertainty
  const settings = { level: first.level, resamples: first.resamples, seed: first.seed }
  return Effect.zipWith(
    studyStatistics({
      strategies: loaded.experiments.map((e, i) => ({
        name: e.experiment.name,
        replicates: e.replicates.map((r, k) => ({ estimates: r.evaluation.estimates, evidence: loaded.evidence[i]![k]! }))
      })),
      definitions: loaded.evidence.map((replicates) => estimateDefinitions(replicates[0]!)),
      ...(loaded.experiments.find((e) => e.experiment.baseline) === undefined
        ? {}
        : { baseline: loaded.experiments.find((e) => e.experiment.baseline)!.experiment.name }),
      compare,
      settings,
      ...(progress === undefined ? {} : { progress })
    }),
    pairedComparisons(loaded, settings, progress),
    (statistics, paired) => (paired.length === 0 ? statistics : { ...statistics, paired })
  )
}

/**
 * Every two conditioned strategies (their first replicates), compared on the paired metrics scene by scene and
 * seed by seed; the layout gain too when both have one (two scenes or more), each pair's gain being its own
 * sample against its own scene's truth and the other scenes', so two strategies' gains differ by how much more
 * one follows its conditions.
 */
const pairedComparisons = (
  loaded: LoadedStudy,
  settings: UncertaintySettings,
  progress?: (pair: string, done: number, total: number) => Effect.Effect<void>
) => {
  const conditioned = loaded.experiments.flatMap((e) => {
    const paired = e.replicates[0]!.evaluation.paired
    if (paired === undefined) return []
    const gains = paired.pairs.map((p) => p.layoutGain)
    const values: Record<string, ReadonlyArray<number>> = {
      wasserstein: paired.pairs.map((p) => p.wasserstein),
      ks: paired.pairs.map((p) => p.ks),
      layout: paired.pairs.map((p) => p.layout),
      ...(gains.every((g) => g !== undefined) ? { layoutGain: gains } : {})
    }
    return [{ name: e.experiment.name, units: pairUnits(paired.pairs), values }]
  })
  const sharedMetrics = (a: Record<string, ReadonlyArray<number>>, b: Record<string, ReadonlyArray<number>>) =>
    Object.fromEntries(Object.entries(a).filter(([metric]) => metric in b))
  return Effect.forEach(
    conditioned.flatMap((a, i) => conditioned.slice(i + 1).map((b) => [a, b] as const)),
    ([a, b]) =>
      comparePairedMetrics(
        { ...a, values: sharedMetrics(a.values, b.values) },
        { ...b, values: sharedMetrics(b.values, a.values) },
        settings,
        (done, total) => progress?.(`${a.name} vs ${b.name} (paired)`, done, total) ?? Effect.yieldNow()
      )
  )
}

/**
 * MLflow metrics of the statistics: per replicated experiment, its summary run's mean over the
 * replicates, the interval's bounds and the spread between seeds; for the study's run, each
 * comparison's difference, interval, p-value and Holm-adjusted p-value per metric.
 */
export const statisticsMetrics = (statistics: StudyStatistics) => {
  const metricIds = new Set<string>(TRACKED_METRICS.map((m) => m.id))
  const experiments: Record<string, Record<string, number>> = {}
  for (const strategy of statistics.strategies) {
    if (strategy.replicates < 2) continue
    const values: Record<string, number> = { replicates: strategy.replicates }
    for (const [id, e] of Object.entries(strategy.estimates)) {
      if (!metricIds.has(id)) continue
      const keys = intervalKeys(id)
      values[id] = e.value
      values[keys.low] = e.low
      values[keys.high] = e.high
      if (e.seedSpread !== undefined) values[keys.seedSpread] = e.seedSpread
    }
    experiments[strategy.name] = values
  }
  const study: Record<string, number> = {}
  for (const comparison of statistics.comparisons) {
    for (const line of comparison.lines) {
      const key = `compare/${comparison.a}/${comparison.b}/${line.id}`
      Object.assign(study, {
        [`${key}.difference`]: line.difference,
        [`${key}.low`]: line.low,
        [`${key}.high`]: line.high,
        [`${key}.p`]: line.p,
        [`${key}.p_holm`]: line.pAdjusted
      })
    }
  }
  return { experiments, study }
}

export interface StudyReportRequest {
  readonly study: string
  readonly experiments: ReadonlyArray<ExperimentDirs>
  readonly compare: ReadonlyArray<readonly [string, string]>
  readonly cacheDir: string
  readonly outDir: string
  readonly tracking?: ReportTracking
  readonly backend?: string
  readonly progress?: (pair: string, done: number, total: number) => Effect.Effect<void>
}

/** Reads a study's results, computes its statistics and renders the report. */
export const renderStudyReport = (
  request: StudyReportRequest
): Effect.Effect<{ statistics: StudyStatistics; rendered: RenderedReport }, ReportError, ReportRenderer | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (request.experiments.length === 0) {
      return yield* new ReportError({ path: request.outDir, reason: "the study has no finished evaluation to report" })
    }
    const loaded = withStudyReferences(yield* loadStudy(request.experiments))
    const statistics = yield* statisticsOf(loaded, request.compare, request.progress)
    const renderer = yield* ReportRenderer
    const rendered = yield* renderer.render({
      study: request.study,
      experiments: loaded.experiments,
      statistics,
      cacheDir: request.cacheDir,
      outDir: request.outDir,
      ...(request.tracking === undefined ? {} : { tracking: request.tracking }),
      ...(request.backend === undefined ? {} : { backend: request.backend })
    })
    return { statistics, rendered }
  })
