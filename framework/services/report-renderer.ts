import { Context, Schema } from "effect"
import type { Effect } from "effect"
import type { Experiment } from "../declaration/experiment.ts"

/**
 * What the report reads of an experiment's declaration: the strategy table needs the components,
 * run facts the training budget. A whole `Experiment` fits; `sardine report` on a cache without a
 * report step rebuilds this much from the generate and train manifests.
 */
export type ReportedStrategy = Pick<Experiment, "name" | "description" | "baseline" | "base" | "components" | "train">

/** One experiment's evaluate output, as the report reads it. */
export interface ReportedExperiment {
  readonly experiment: ReportedStrategy
  /** Folder of its finished evaluate step (evaluation.json + previews/). */
  readonly evaluationDir: string
}

/** Where the runs were tracked, for links: a server URI or a local MLflow folder. */
export interface ReportTracking {
  readonly target: string
  readonly experimentId: string
  /** Run id of each experiment by name. */
  readonly runIds: Readonly<Record<string, string>>
}

export interface ReportRequest {
  readonly study: string
  readonly experiments: ReadonlyArray<ReportedExperiment>
  /** The cache the evaluations came from: training logs and manifests are found through it. */
  readonly cacheDir: string
  /** report.html, report.md and their images go here. */
  readonly outDir: string
  readonly tracking?: ReportTracking
  /** The tensor backend the steps ran on, when the caller knows it (else read from the runs' tags). */
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

/** Renders a study's comparison report from finished evaluations; never reruns anything. */
export class ReportRenderer extends Context.Tag("sardine/ReportRenderer")<ReportRenderer, {
  readonly render: (request: ReportRequest) => Effect.Effect<RenderedReport, ReportError>
}>() {}
