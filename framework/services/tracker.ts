import { Context, Schema } from "effect"
import type { Effect, Scope } from "effect"

/** The tag that lets a rerun find the run it created before (value: a study's or experiment's content key). */
export const SARDINE_KEY_TAG = "sardine.key"
/** On a forced rerun's run: the id of the run it reran (the latest one with the same SARDINE_KEY_TAG). */
export const SARDINE_RERUN_OF_TAG = "sardine.rerunOf"

/** How a run ends. MLflow's RUNNING and SCHEDULED are set by the tracker itself. */
export type RunEndStatus = "FINISHED" | "FAILED" | "KILLED"
export type RunStatus = "RUNNING" | "SCHEDULED" | RunEndStatus

export interface MetricPoint {
  readonly key: string
  /** Any double; NaN and ±Infinity are accepted and encoded the way the store expects. */
  readonly value: number
  readonly step: number
  /** Milliseconds since the epoch; the time of the call when absent. */
  readonly timestamp?: number
}

export interface DatasetInput {
  readonly name: string
  /** At most 36 characters (MLflow's limit). */
  readonly digest: string
  /** Where the data lives: a path, a file: or http(s): URL. */
  readonly source: string
  /** MLflow's `mlflow.data.context` input tag: "training", "evaluation", … */
  readonly context?: string
}

export interface StartRunOptions {
  readonly experimentId: string
  readonly name: string
  /** Tags set on the run (system tags, the content key under SARDINE_KEY_TAG, …). */
  readonly tags?: Readonly<Record<string, string>>
  /** Makes the run a child of this run (`mlflow.parentRunId`). */
  readonly parentRunId?: string
  /**
   * When set, an active run of the experiment whose SARDINE_KEY_TAG equals this value (and whose parent is
   * `parentRunId`, when given) is reused instead of creating a new one; a new run gets the tag.
   */
  readonly reuseKey?: string
  /**
   * A forced rerun: a new run even when one has `reuseKey`, tagged SARDINE_RERUN_OF_TAG with that run's id.
   * Being the latest with the key, it is the one later runs reuse.
   */
  readonly rerun?: boolean
  /** Milliseconds since the epoch; now when absent. */
  readonly startTime?: number
}

export interface TrackedRun {
  readonly runId: string
  readonly experimentId: string
  readonly name: string
  /** True when an existing run was found through `reuseKey`; it is set back to RUNNING. */
  readonly reused: boolean
  /** Of a reused run: the last step logged of each metric, so a resumed step does not log its steps again. */
  readonly latestSteps?: Readonly<Record<string, number>>
}

export interface ImageAtStep {
  /** The image series, shown by the MLflow UI's image view: letters, digits, `_ - . / space`. */
  readonly key: string
  readonly step: number
  /** A PNG file. */
  readonly file: string
  readonly timestamp?: number
  /**
   * Part of the artifacts' names (a random one when absent). A fixed id makes sending the image again
   * replace it instead of adding a copy.
   */
  readonly id?: string
}

/** A request the store answered with an error, or that could not reach it within the retry budget. */
export class TrackerError extends Schema.TaggedError<TrackerError>()("TrackerError", {
  /** What was attempted: "runs/log-batch", "artifact upload", "write meta.yaml", … */
  operation: Schema.String,
  /** The server URI (never with credentials) or the local store folder. */
  target: Schema.String,
  reason: Schema.String,
  /** MLflow's error code (RESOURCE_DOES_NOT_EXIST, INVALID_PARAMETER_VALUE, …) when the server gave one. */
  error_code: Schema.optional(Schema.String),
  /** HTTP status, for the REST store. */
  status: Schema.optional(Schema.Number),
  /** The store could not be reached or was overloaded (network error, 429, 5xx): a later attempt may succeed. */
  retryable: Schema.optional(Schema.Boolean),
  /** How long the request was retried before this: "4 attempts in 1 s". */
  tried: Schema.optional(Schema.String)
}) {
  override get message() {
    const code = this.error_code === undefined ? "" : ` [${this.error_code}]`
    const tried = this.tried === undefined ? "" : ` (gave up after ${this.tried})`
    return `${this.operation} on ${this.target} failed${code}: ${this.reason}${tried}`
  }
}

/** Params are write-once: logging a different value for a logged key is refused. */
export class ParamConflictError extends Schema.TaggedError<ParamConflictError>()("ParamConflictError", {
  runId: Schema.String,
  key: Schema.String,
  logged: Schema.String,
  attempted: Schema.String,
  error_code: Schema.optional(Schema.String)
}) {
  override get message() {
    return `param "${this.key}" of run ${this.runId} was logged as ${JSON.stringify(this.logged)}; ` +
      `it cannot change to ${JSON.stringify(this.attempted)} (params are write-once)`
  }
}

/** A key, value or name that MLflow would refuse, caught before anything is sent. */
export class TrackingInputError extends Schema.TaggedError<TrackingInputError>()("TrackingInputError", {
  /** "param key", "metric value", "dataset digest", … */
  field: Schema.String,
  value: Schema.String,
  rule: Schema.String
}) {
  override get message() {
    return `${this.field} ${JSON.stringify(this.value.slice(0, 120))}: ${this.rule}`
  }
}

/** A local file to log (artifact, image) that cannot be read. */
export class TrackerFileError extends Schema.TaggedError<TrackerFileError>()("TrackerFileError", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

/**
 * Where runs, params, metrics and artifacts go: an MLflow server (REST) or an MLflow-compatible folder
 * (`./mlruns`). Metrics may be buffered: `flush` and `endRun` return once every metric logged before them
 * is stored.
 */
export class Tracker extends Context.Tag("sardine/Tracker")<Tracker, {
  /** Where this tracker writes, for messages: the server URI without credentials, or the store folder. */
  readonly target: string
  /** The id of the experiment with this name, created when missing (safe when several processes race). */
  readonly getOrCreateExperiment: (name: string) => Effect.Effect<string, TrackerError | TrackingInputError>
  readonly startRun: (options: StartRunOptions) => Effect.Effect<TrackedRun, TrackerError | TrackingInputError>
  /** Write-once: the same value again is a no-op, a different one fails with ParamConflictError. */
  readonly logParams: (
    runId: string,
    params: Readonly<Record<string, string>>
  ) => Effect.Effect<void, TrackerError | TrackingInputError | ParamConflictError>
  readonly logMetrics: (
    runId: string,
    points: ReadonlyArray<MetricPoint>
  ) => Effect.Effect<void, TrackerError | TrackingInputError>
  readonly setTags: (
    runId: string,
    tags: Readonly<Record<string, string>>
  ) => Effect.Effect<void, TrackerError | TrackingInputError>
  readonly logInputs: (
    runId: string,
    inputs: ReadonlyArray<DatasetInput>
  ) => Effect.Effect<void, TrackerError | TrackingInputError>
  /**
   * Like MLflow's log_artifact / log_artifacts: a file lands at `<artifactPath>/<file name>`, a folder's
   * contents (recursively) under `<artifactPath>/`. `artifactPath` is a folder inside the run's artifacts,
   * "" or absent for the top level.
   */
  readonly logArtifact: (
    runId: string,
    localPath: string,
    artifactPath?: string
  ) => Effect.Effect<void, TrackerError | TrackerFileError | TrackingInputError>
  /** Logs a PNG the way `mlflow.log_image(key=…, step=…)` does, so it shows in the UI's image view. */
  readonly logImage: (
    runId: string,
    image: ImageAtStep
  ) => Effect.Effect<void, TrackerError | TrackerFileError | TrackingInputError>
  /** Waits until every buffered metric of the run (all runs when absent) is stored. */
  readonly flush: (runId?: string) => Effect.Effect<void, TrackerError>
  /** Flushes the run's metrics, then sets its status and end time. */
  readonly endRun: (runId: string, status: RunEndStatus, endTime?: number) => Effect.Effect<void, TrackerError>
}>() {}

export interface TrackerOpenOptions {
  /**
   * The caller queues, batches and retries (framework/tracking/tracking-queue.ts): each request is retried
   * only briefly, metrics are sent at once rather than buffered, and closing waits for nothing.
   */
  readonly queued?: boolean
}

/**
 * Opens the tracker a tracking URI names: http(s):// → an MLflow server; a file: URI or a path → an MLflow
 * folder; absent → `MLFLOW_TRACKING_URI`, else `./mlruns`. Closing the scope sends any buffered metric.
 */
export class TrackerFactory extends Context.Tag("sardine/TrackerFactory")<TrackerFactory, {
  readonly open: (uri: string | undefined, options?: TrackerOpenOptions) => Effect.Effect<Tracker["Type"], TrackingInputError, Scope.Scope>
}>() {}

export interface PushSummary {
  /** The server pushed to, without credentials. */
  readonly target: string
  readonly experiments: number
  /** Runs created on the server by this push. */
  readonly created: number
  /** Runs found on the server from an earlier push and brought up to date. */
  readonly updated: number
  /** Runs already on the server and unchanged since the last push. */
  readonly unchanged: number
}

/** Replays the runs of a local MLflow folder into a tracking server; pushing again creates nothing new. */
export class RunPush extends Context.Tag("sardine/RunPush")<RunPush, {
  readonly push: (
    sourceDir: string,
    targetUri: string,
    onRun?: (line: string) => Effect.Effect<void>
  ) => Effect.Effect<PushSummary, TrackerError | TrackerFileError | TrackingInputError | ParamConflictError>
}>() {}
