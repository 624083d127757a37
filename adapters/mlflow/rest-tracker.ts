import { Clock, Effect, Option, Ref, Schema, type Scope } from "effect"
import {
  type DatasetInput,
  type ImageAtStep,
  type MetricPoint,
  ParamConflictError,
  SARDINE_KEY_TAG,
  SARDINE_RERUN_OF_TAG,
  type StartRunOptions,
  type TrackedRun,
  type Tracker,
  TrackerError,
  TrackingInputError
} from "../../framework/services/tracker.ts"
import {
  checkArtifactPath,
  checkDataset,
  checkExperimentName,
  checkImageKey,
  checkMetric,
  checkParams,
  checkReuseKey,
  checkTags
} from "../../framework/tracking/mlflow-limits.ts"
import { MLFLOW_LOGGED_IMAGES, MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME, MLFLOW_USER } from "../../framework/tracking/system-tags.ts"
import { artifactFiles } from "./artifact-files.ts"
import { DATASET_CONTEXT_TAG, datasetSource } from "./dataset-source.ts"
import { imageArtifacts } from "./image-artifacts.ts"
import { chunkLogBatch, type KeyValue, type StampedMetric } from "./log-batch-chunks.ts"
import { makeMetricBuffer } from "./metric-buffer.ts"
import type { RestClient } from "./rest-client.ts"
import {
  CreateExperimentResponse,
  CreateRunResponse,
  GetExperimentResponse,
  GetRunResponse,
  type RunMessage,
  SearchRunsResponse,
  tagMap
} from "./rest-messages.ts"

type TrackerService = Tracker["Type"]

export interface RestTrackerOptions {
  /** How often buffered metrics are sent. */
  readonly metricFlushIntervalMs?: number
  /** More pending points than this makes logMetrics wait for the server. */
  readonly maxPendingMetrics?: number
  /** How long closing the tracker may spend sending buffered metrics. */
  readonly closeTimeoutMs?: number
  /** False: logMetrics sends at once and fails when the server does (for a caller that queues itself). */
  readonly bufferMetrics?: boolean
}

const Empty = Schema.Struct({})

const entries = (record: Readonly<Record<string, string>>): ReadonlyArray<KeyValue> => Object.entries(record).map(([key, value]) => ({ key, value }))

/** `mlflow-artifacts:/1/<run>/artifacts` or `mlflow-artifacts://host:port/1/<run>/artifacts` → `1/<run>/artifacts`. */
export const proxiedArtifactRoot = (artifactUri: string): string | undefined => {
  const match = /^mlflow-artifacts:(?:\/\/[^/]*)?\/*(.*)$/.exec(artifactUri)
  // The group is mandatory: a match has it.
  return match === null ? undefined : match[1]!.replace(/\/+$/, "")
}

/** A Tracker that talks to an MLflow tracking server over its REST API. */
export const makeRestTracker = (
  client: RestClient,
  options: RestTrackerOptions = {}
): Effect.Effect<TrackerService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const experiments = yield* Ref.make(new Map<string, string>())
    const artifactUris = yield* Ref.make(new Map<string, string>())

    const logBatch = (runId: string, items: Parameters<typeof chunkLogBatch>[1]) =>
      Effect.forEach(chunkLogBatch(runId, items), (body) => client.call("runs/log-batch", "POST", { ...body }, Empty), {
        discard: true
      })

    const buffer = yield* makeMetricBuffer((runId, points) => logBatch(runId, { metrics: points }), {
      intervalMs: options.metricFlushIntervalMs ?? 1000,
      maxPending: options.maxPendingMetrics ?? 100_000,
      closeTimeoutMs: options.closeTimeoutMs ?? 30_000
    })

    const getRun = (runId: string) => Effect.map(client.call("runs/get", "GET", { run_id: runId }, GetRunResponse), (r) => r.run)

    const remember = (run: RunMessage) =>
      run.info.artifact_uri === undefined
        ? Effect.void
        : Ref.update(artifactUris, (m) => new Map(m).set(run.info.run_id, run.info.artifact_uri as string))

    const getByName = (name: string) =>
      client.call("experiments/get-by-name", "GET", { experiment_name: name }, GetExperimentResponse).pipe(
        Effect.map((r) => Option.some(r.experiment)),
        Effect.catchIf((e) => e.error_code === "RESOURCE_DOES_NOT_EXIST", () => Effect.succeed(Option.none()))
      )

    const activeId = (experiment: { readonly experiment_id: string; readonly name: string; readonly lifecycle_stage?: string | undefined }) =>
      experiment.lifecycle_stage === "deleted"
        ? Effect.fail(
          new TrackerError({
            operation: "experiments/get-by-name",
            target: client.target,
            reason: `experiment "${experiment.name}" (id ${experiment.experiment_id}) is deleted: restore it or choose another name`,
            error_code: "INVALID_STATE"
          })
        )
        : Effect.succeed(experiment.experiment_id)

    const getOrCreateExperiment: TrackerService["getOrCreateExperiment"] = (name) =>
      Effect.gen(function*() {
        yield* checkExperimentName(name)
        const known = (yield* Ref.get(experiments)).get(name)
        if (known !== undefined) return known
        const found = yield* getByName(name)
        const id = Option.isSome(found)
          ? yield* activeId(found.value)
          : yield* client.call("experiments/create", "POST", { name }, CreateExperimentResponse).pipe(
            Effect.map((r) => r.experiment_id),
            // Another process created it between our lookup and our create: use theirs.
            Effect.catchIf((e) => e.error_code === "RESOURCE_ALREADY_EXISTS", () =>
              Effect.flatMap(getByName(name), (again) =>
                Option.isSome(again)
                  ? activeId(again.value)
                  : Effect.fail(
                    new TrackerError({ operation: "experiments/create", target: client.target, reason: `experiment "${name}" exists but cannot be read` })
                  )))
          )
        yield* Ref.update(experiments, (m) => new Map(m).set(name, id))
        return id
      })

    const findByKey = (experimentId: string, key: string, parentRunId: string | undefined) => {
      const filter = `tags.\`${SARDINE_KEY_TAG}\` = '${key}'` +
        (parentRunId === undefined ? "" : ` and tags.\`${MLFLOW_PARENT_RUN_ID}\` = '${parentRunId}'`)
      return client.call("runs/search", "POST", {
        experiment_ids: [experimentId],
        filter,
        run_view_type: "ACTIVE_ONLY",
        max_results: 1,
        order_by: ["attributes.start_time DESC"]
      }, SearchRunsResponse).pipe(Effect.map((r) => Option.fromNullable(r.runs[0])))
    }

    const trackedRun = (run: RunMessage, name: string, reused: boolean): TrackedRun => ({
      runId: run.info.run_id,
      experimentId: run.info.experiment_id,
      name: run.info.run_name ?? name,
      reused,
      // A run's "latest" metric is the one at its highest step (MLflow's latest_metrics).
      ...(reused ? { latestSteps: Object.fromEntries(run.data.metrics.map((m) => [m.key, m.step])) } : {})
    })

    const startRun: TrackerService["startRun"] = (opts: StartRunOptions) =>
      Effect.gen(function*() {
        if (opts.reuseKey !== undefined) yield* checkReuseKey(opts.reuseKey)
        if (opts.parentRunId !== undefined) yield* checkReuseKey(opts.parentRunId)
        const tags: Record<string, string> = {
          ...opts.tags,
          [MLFLOW_RUN_NAME]: opts.name,
          ...(opts.reuseKey === undefined ? {} : { [SARDINE_KEY_TAG]: opts.reuseKey }),
          ...(opts.parentRunId === undefined ? {} : { [MLFLOW_PARENT_RUN_ID]: opts.parentRunId })
        }
        yield* checkTags(tags)
        const found = opts.reuseKey === undefined
          ? Option.none<RunMessage>()
          : yield* findByKey(opts.experimentId, opts.reuseKey, opts.parentRunId)
        const rerunOf = opts.rerun === true ? Option.map(found, (run) => run.info.run_id) : Option.none<string>()
        if (Option.isSome(rerunOf)) tags[SARDINE_RERUN_OF_TAG] = rerunOf.value
        const reuse = opts.rerun === true ? Option.none<RunMessage>() : found
        if (Option.isSome(reuse)) {
          const run = reuse.value
          yield* client.call("runs/update", "POST", { run_id: run.info.run_id, status: "RUNNING" }, Empty)
          yield* logBatch(run.info.run_id, { tags: entries(tags) })
          yield* remember(run)
          return trackedRun(run, opts.name, true)
        }
        const startTime = opts.startTime ?? (yield* Clock.currentTimeMillis)
        const created = yield* client.call(
          "runs/create",
          "POST",
          {
            experiment_id: opts.experimentId,
            run_name: opts.name,
            user_id: tags[MLFLOW_USER] ?? "",
            start_time: startTime,
            tags: entries(tags)
          },
          CreateRunResponse,
          {
            // runs/create is not idempotent: when an answer is lost, the run may exist already (a rerun's: not the run it reruns).
            ...(opts.reuseKey === undefined ? {} : {
              beforeRetry: findByKey(opts.experimentId, opts.reuseKey, opts.parentRunId).pipe(
                Effect.map(Option.filter((run) => !Option.contains(rerunOf, run.info.run_id))),
                Effect.map(Option.map((run) => ({ run })))
              )
            })
          }
        )
        yield* remember(created.run)
        return trackedRun(created.run, opts.name, false)
      })

    /** The first param whose logged value differs, as the typed error. */
    const conflictIn = (runId: string, params: Readonly<Record<string, string>>, errorCode?: string) =>
      Effect.map(getRun(runId), (run) => {
        const logged = tagMap(run.data.params)
        const conflict = Object.entries(params).find(([k, v]) => logged[k] !== undefined && logged[k] !== v)
        return conflict === undefined
          ? Option.none<ParamConflictError>()
          : Option.some(
            new ParamConflictError({
              runId,
              key: conflict[0],
              logged: logged[conflict[0]]!,
              attempted: conflict[1],
              ...(errorCode === undefined ? {} : { error_code: errorCode })
            })
          )
      })

    const logParams: TrackerService["logParams"] = (runId, params) =>
      Effect.gen(function*() {
        yield* checkParams(params)
        const run = yield* getRun(runId)
        const logged = tagMap(run.data.params)
        const fresh: Array<KeyValue> = []
        for (const [key, value] of Object.entries(params)) {
          const was = logged[key]
          if (was === undefined) fresh.push({ key, value })
          else if (was !== value) {
            return yield* Effect.fail(new ParamConflictError({ runId, key, logged: was, attempted: value }))
          }
        }
        yield* logBatch(runId, { params: fresh }).pipe(
          // Another writer logged one of these keys since we looked.
          Effect.catchIf((e) => e.error_code === "INVALID_PARAMETER_VALUE", (e) =>
            Effect.flatMap(
              conflictIn(runId, params, e.error_code),
              (conflict): Effect.Effect<never, TrackerError | ParamConflictError> => Option.isSome(conflict) ? Effect.fail(conflict.value) : Effect.fail(e)
            ))
        )
      })

    const logMetrics: TrackerService["logMetrics"] = (runId, points: ReadonlyArray<MetricPoint>) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        // The timestamp is fixed now, so a resend after a lost answer is the same point, not a new one.
        const stamped: Array<StampedMetric> = points.map((p) => ({ key: p.key, value: p.value, step: p.step, timestamp: p.timestamp ?? now }))
        yield* Effect.forEach(stamped, checkMetric, { discard: true })
        yield* options.bufferMetrics === false ? logBatch(runId, { metrics: stamped }) : buffer.add(runId, stamped)
      })

    const setTags: TrackerService["setTags"] = (runId, tags) => Effect.zipRight(checkTags(tags), logBatch(runId, { tags: entries(tags) }))

    const logInputs: TrackerService["logInputs"] = (runId, inputs: ReadonlyArray<DatasetInput>) =>
      Effect.gen(function*() {
        yield* Effect.forEach(inputs, checkDataset, { discard: true })
        for (let i = 0; i < inputs.length; i += 1000) {
          yield* client.call("runs/log-inputs", "POST", {
            run_id: runId,
            datasets: inputs.slice(i, i + 1000).map((input) => ({
              tags: input.context === undefined ? [] : [{ key: DATASET_CONTEXT_TAG, value: input.context }],
              dataset: { name: input.name, digest: input.digest, ...datasetSource(input.source) }
            }))
          }, Empty)
        }
      })

    const artifactRootOf = (runId: string) =>
      Effect.gen(function*() {
        let uri = (yield* Ref.get(artifactUris)).get(runId)
        if (uri === undefined) {
          const run = yield* getRun(runId)
          yield* remember(run)
          uri = run.info.artifact_uri ?? ""
        }
        const root = proxiedArtifactRoot(uri)
        if (root === undefined) {
          return yield* Effect.fail(
            new TrackerError({
              operation: "artifact upload",
              target: client.target,
              reason: `run ${runId} stores artifacts at ${uri}, which only the server's artifact proxy can reach from here: ` +
                "start mlflow server with artifact serving on (the default) and --artifacts-destination"
            })
          )
        }
        return root
      })

    const logArtifact: TrackerService["logArtifact"] = (runId, localPath, artifactPath = "") =>
      Effect.gen(function*() {
        yield* checkArtifactPath(artifactPath)
        const root = yield* artifactRootOf(runId)
        const files = yield* artifactFiles(localPath, artifactPath)
        yield* Effect.forEach(files, (f) => client.upload(`${root}/${f.artifactPath}`, { kind: "file", path: f.file, size: f.size }), {
          discard: true
        })
      })

    const logImage: TrackerService["logImage"] = (runId, image: ImageAtStep) =>
      Effect.gen(function*() {
        yield* checkImageKey(image.key)
        if (!Number.isSafeInteger(image.step)) {
          return yield* Effect.fail(new TrackingInputError({ field: `image "${image.key}" step`, value: String(image.step), rule: "must be an integer" }))
        }
        const root = yield* artifactRootOf(runId)
        const files = yield* imageArtifacts(image.file, image.key, image.step, image.timestamp ?? (yield* Clock.currentTimeMillis), image.id)
        yield* client.upload(`${root}/${files.png.artifactPath}`, { kind: "bytes", bytes: files.png.bytes })
        yield* client.upload(`${root}/${files.thumbnail.artifactPath}`, { kind: "bytes", bytes: files.thumbnail.bytes })
        yield* setTags(runId, { [MLFLOW_LOGGED_IMAGES]: "True" })
      })

    const endRun: TrackerService["endRun"] = (runId, status, endTime) =>
      Effect.gen(function*() {
        yield* buffer.flush(runId)
        const end = endTime ?? (yield* Clock.currentTimeMillis)
        yield* client.call("runs/update", "POST", { run_id: runId, status, end_time: end }, Empty)
      })

    return {
      target: client.target,
      getOrCreateExperiment,
      startRun,
      logParams,
      logMetrics,
      setTags,
      logInputs,
      logArtifact,
      logImage,
      flush: buffer.flush,
      endRun
    }
  })
