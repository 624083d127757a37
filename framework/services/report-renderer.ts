import { Context, Schema } from "effect"
import type { Effect } from "effect"
import type { Experiment } from "../declaration/experiment.ts"
import type { StudyStatistics } from "../metrics/study-statistics.ts"
import type { StepManifest } from "../runner/cache.ts"
import type { EvaluationResult } from "../steps/evaluation-result.ts"
import type { TrainingLogLine } from "../steps/training-log.ts"
import type { ValidationImage } from "../steps/validation-images.ts"

/**
 * What the report reads of an experiment's declaration: the strategy table needs the components,
 * run facts the training budget. A whole `Experiment` fits; `sardine report` on a cache without a
 * report step rebuilds this much from the generate and train manifests.
 */
export type ReportedStrategy = Pick<Experiment, "name" | "description" | "baseline" | "base" | "components" | "train"> & {
  /** An evaluation `sardine evaluate` wrote (`sardine report --add`): its folder; not a strategy sardine trained. */
  readonly external?: string
}

/** One training replicate's results (an experiment without replicates has one). */
export interface ReportedReplicate {
  /** The name its steps and MLflow run go by: the experiment's, or `<experiment>#<r>`. */
  readonly name: string
  /** 1-based. */
  readonly replicate: number
  readonly evaluation: EvaluationResult
  /** Folder of its finished evaluate step: the previews evaluation.json names are in it. */
  readonly evaluationDir: string
  /** Manifests of the steps behind the evaluation, when they were found. */
  readonly steps: { readonly evaluate?: StepManifest; readonly generate?: StepManifest; readonly train?: StepManifest }
  readonly trainingLog: ReadonlyArray<TrainingLogLine>
  /** The images of `train.validationPrompts` its train step kept (torch engine), by step then prompt. */
  readonly validationImages: ReadonlyArray<ValidationImage>
}

export interface ReportedExperiment {
  readonly experiment: ReportedStrategy
  readonly replicates: ReadonlyArray<ReportedReplicate>
}

/** Where the runs were tracked, for links: a server URI or a local MLflow folder. */
export interface ReportTracking {
  readonly target: string
  readonly experimentId: string
  /** Run id of each experiment (and replicate) by name. */
  readonly runIds: Readonly<Record<string, string>>
}

/**
 * Everything a report shows, handed over by the report step (or `sardine report`): the renderer
 * reads no cache and recomputes nothing.
 */
export interface ReportRequest {
  readonly study: string
  readonly experiments: ReadonlyArray<ReportedExperiment>
  /** Intervals over replicates, comparisons and verdicts (framework/metrics/study-statistics.ts). */
  readonly statistics: StudyStatistics
  /** Where the steps' outputs are, for the run facts' note. */
  readonly cacheDir: string
  /** report.html, report.md and their images go here. */
  readonly outDir: string
  readonly tracking?: ReportTracking
  /** The tensor backend the steps ran on, when known. */
  readonly backend?: string
}

/** Where a rendered report went. */
export interface RenderedReport {
  readonly html: string
  readonly markdown: string
}

/**
 * Written next to the report: the study name and tracking of the request, so `sardine report`
 * rendering again from the cache keeps the MLflow links the report step had.
 */
export const reportRequestFile = "report-request.json"
export interface SavedReportRequest {
  readonly study: string
  readonly tracking?: ReportTracking
  readonly backend?: string
}

export class ReportError extends Schema.TaggedError<ReportError>()("ReportError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

/** Renders a study's comparison report from what the request holds; never reruns anything. */
export class ReportRenderer extends Context.Tag("sardine/ReportRenderer")<ReportRenderer, {
  readonly render: (request: ReportRequest) => Effect.Effect<RenderedReport, ReportError>
}>() {}
