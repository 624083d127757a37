import { Context, Schema } from "effect"
import type { Effect } from "effect"
import type { Experiment } from "../declaration/experiment.ts"

/** One experiment's evaluate output, as the report reads it. */
export interface ReportedExperiment {
  readonly experiment: Experiment
  /** Folder of its finished evaluate step (evaluation.json + previews/). */
  readonly evaluationDir: string
}

export interface ReportRequest {
  readonly study: string
  readonly experiments: ReadonlyArray<ReportedExperiment>
  /** The cache the evaluations came from: training logs and manifests are found through it. */
  readonly cacheDir: string
  /** report.html, report.md and their images go here. */
  readonly outDir: string
  /** Where the runs were tracked, for links (a server URI or a local folder). */
  readonly tracking?: {
    readonly target: string
    readonly experimentId: string
    readonly runIds: Readonly<Record<string, string>>
  }
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
  readonly render: (request: ReportRequest) => Effect.Effect<void, ReportError>
}>() {}
