import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Layer, Option } from "effect"
import { createHash } from "node:crypto"
// mtimeMs to the sub-millisecond, as earlier pushes hashed it: FileSystem's stat gives whole milliseconds.
import { stat } from "node:fs/promises"
import { join, posix } from "node:path"
import { fileURLToPath } from "node:url"
import { type DatasetInput, type PushSummary, RunPush, type Tracker, type TrackerError, TrackerFileError } from "../../framework/services/tracker.ts"
import { MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME } from "../../framework/tracking/system-tags.ts"
import { fileProblem } from "../../framework/files/file-errors.ts"
import { artifactFiles } from "./artifact-files.ts"
import { DATASET_CONTEXT_TAG } from "./dataset-source.ts"
import { datasetId } from "./file-store-format.ts"
import { exists, filesUnder, listExperiments, listRuns, readKeyValues, readMetrics, readYaml, type StoredExperiment, type StoredRun } from "./file-store.ts"
import { type Env, makeRestClient, restConfig, type RetryPolicy } from "./rest-client.ts"
import { ListArtifactsResponse, SearchRunsResponse } from "./rest-messages.ts"
import { makeRestTracker } from "./rest-tracker.ts"

/** On the server's copy: which local run it replays, and the state of the local run it last received. */
export const LOCAL_RUN_ID_TAG = "sardine.local_run_id"
export const PUSH_DIGEST_TAG = "sardine.push_digest"

interface LocalRun {
  readonly experiment: StoredExperiment
  readonly run: StoredRun
  readonly tags: Record<string, string>
}

/** Parents before their children, so a child can point at its parent's new id. */
const parentsFirst = (runs: ReadonlyArray<LocalRun>): ReadonlyArray<LocalRun> => {
  const byId = new Map(runs.map((r) => [r.run.meta.run_id, r]))
  const out: Array<LocalRun> = []
  const placed = new Set<string>()
  const place = (r: LocalRun, seen: ReadonlySet<string>) => {
    const id = r.run.meta.run_id
    if (placed.has(id)) return
    const parent = byId.get(r.tags[MLFLOW_PARENT_RUN_ID] ?? "")
    if (parent !== undefined && !seen.has(parent.run.meta.run_id)) place(parent, new Set([...seen, id]))
    placed.add(id)
    out.push(r)
  }
  for (const r of runs) place(r, new Set())
  return out
}

/**
 * A digest of everything a push sends for a run: meta.yaml, metrics, params, tags and inputs by content,
 * artifacts by path, size and modification time (not read: they may be large).
 */
const runDigest = (runDir: string, artifactsDir: string): Effect.Effect<string, TrackerFileError> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const hash = createHash("sha256")
    const read = (file: string) => fs.readFile(file).pipe(Effect.mapError((e) => new TrackerFileError({ file, reason: fileProblem(e) })))
    hash.update(yield* read(join(runDir, "meta.yaml")))
    for (const sub of ["metrics", "params", "tags", "inputs"]) {
      for (const file of yield* filesUnder(join(runDir, sub))) {
        hash.update(`\u0000${sub}/${file}\u0000`)
        hash.update(yield* read(join(runDir, sub, ...file.split("/"))))
      }
    }
    for (const file of yield* filesUnder(artifactsDir)) {
      const path = join(artifactsDir, ...file.split("/"))
      const s = yield* Effect.tryPromise({ try: () => stat(path), catch: (e) => new TrackerFileError({ file: path, reason: String(e) }) })
      hash.update(`\u0000artifacts/${file}\u0000${s.size}\u0000${s.mtimeMs}`)
    }
    return hash.digest("hex").slice(0, 32)
  }).pipe(Effect.provide(NodeFileSystem.layer))

/** The dataset inputs of a local run, read back from inputs/ and the experiment's datasets/. */
const localInputs = (experimentDir: string, runDir: string): Effect.Effect<ReadonlyArray<DatasetInput>, TrackerFileError> =>
  Effect.gen(function*() {
    const out: Array<DatasetInput> = []
    for (const file of yield* filesUnder(join(runDir, "inputs"))) {
      if (!file.endsWith("/meta.yaml")) continue
      const link = (yield* readYaml(join(runDir, "inputs", ...file.split("/")))) as Record<string, unknown> | null
      if (link?.source_type !== "DATASET") continue
      const datasetFile = join(experimentDir, "datasets", String(link.source_id), "meta.yaml")
      const dataset = (yield* readYaml(datasetFile)) as Record<string, unknown> | null
      if (dataset === null || typeof dataset.name !== "string" || dataset.digest === undefined) {
        return yield* Effect.fail(new TrackerFileError({ file: datasetFile, reason: "not a dataset description (name, digest, source)" }))
      }
      let source = String(dataset.source ?? "")
      try {
        const parsed = JSON.parse(source) as { uri?: string; url?: string }
        source = parsed.url ?? parsed.uri ?? source
      } catch {
        // A source that is not JSON is kept as written.
      }
      const tags = (link.tags ?? {}) as Record<string, unknown>
      const context = tags[DATASET_CONTEXT_TAG]
      out.push({ name: dataset.name, digest: String(dataset.digest), source, ...(typeof context === "string" ? { context } : {}) })
      // Guard against a link whose id does not match its dataset (hand-edited folders).
      if (datasetId(dataset.name, String(dataset.digest)) !== link.source_id) {
        yield* Effect.logWarning(`${datasetFile}: id does not match name and digest; pushed as written`)
      }
    }
    return out.sort((a, b) => a.name.localeCompare(b.name))
  })

const artifactsDirOf = (run: StoredRun) => run.meta.artifact_uri.startsWith("file:") ? fileURLToPath(run.meta.artifact_uri) : join(run.dir, "artifacts")

export interface RunPushOptions {
  readonly env?: Env
  readonly retry?: RetryPolicy
  readonly timeoutMs?: number
}

/** What push asks the server beyond the Tracker interface. */
interface RemoteLookups {
  /** The server's copy of a local run, found by LOCAL_RUN_ID_TAG. */
  readonly find: (
    experimentId: string,
    localRunId: string
  ) => Effect.Effect<Option.Option<{ readonly runId: string; readonly tags: Record<string, string> }>, TrackerError>
  /** Artifact path → size of every artifact the server holds for a run. */
  readonly artifactSizes: (runId: string) => Effect.Effect<ReadonlyMap<string, number>, TrackerError>
}

const pushRuns = (
  tracker: Tracker["Type"],
  remote: RemoteLookups,
  sourceDir: string,
  onRun: (line: string) => Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const experiments = (yield* listExperiments(sourceDir)).filter((e) => !e.deleted)
    if (experiments.length === 0 && !(yield* exists(join(sourceDir, "0", "meta.yaml")))) {
      return yield* Effect.fail(new TrackerFileError({ file: sourceDir, reason: "not an MLflow folder: no <experiment id>/meta.yaml in it" }))
    }
    const local: Array<LocalRun> = []
    for (const experiment of experiments) {
      for (const run of yield* listRuns(experiment.dir)) {
        if (run.meta.lifecycle_stage !== "active") continue
        local.push({ experiment, run, tags: yield* readKeyValues(join(run.dir, "tags")) })
      }
    }
    const remoteExperiments = new Map<string, string>()
    const remoteRuns = new Map<string, string>()
    let created = 0
    let updated = 0
    let unchanged = 0
    for (const { experiment, run, tags } of parentsFirst(local)) {
      const localId = run.meta.run_id
      let experimentId = remoteExperiments.get(experiment.meta.experiment_id)
      if (experimentId === undefined) {
        experimentId = yield* tracker.getOrCreateExperiment(experiment.meta.name)
        remoteExperiments.set(experiment.meta.experiment_id, experimentId)
      }
      const digest = yield* runDigest(run.dir, artifactsDirOf(run))
      const existing = yield* remote.find(experimentId, localId)
      const name = run.meta.run_name || tags[MLFLOW_RUN_NAME] || localId
      if (Option.isSome(existing) && existing.value.tags[PUSH_DIGEST_TAG] === digest) {
        remoteRuns.set(localId, existing.value.runId)
        unchanged++
        yield* onRun(`unchanged ${experiment.meta.name} / ${name}`)
        continue
      }
      const localParent = tags[MLFLOW_PARENT_RUN_ID]
      const remoteParent = localParent === undefined ? undefined : remoteRuns.get(localParent)
      const { [MLFLOW_PARENT_RUN_ID]: _dropped, ...ownTags } = tags
      const copiedTags = { ...ownTags, [LOCAL_RUN_ID_TAG]: localId }
      let remoteId: string
      if (Option.isSome(existing)) {
        remoteId = existing.value.runId
        yield* tracker.setTags(remoteId, remoteParent === undefined ? copiedTags : { ...copiedTags, [MLFLOW_PARENT_RUN_ID]: remoteParent })
      } else {
        const started = yield* tracker.startRun({
          experimentId,
          name,
          tags: copiedTags,
          ...(remoteParent === undefined ? {} : { parentRunId: remoteParent }),
          startTime: run.meta.start_time
        })
        remoteId = started.runId
      }
      remoteRuns.set(localId, remoteId)
      yield* tracker.logParams(remoteId, yield* readKeyValues(join(run.dir, "params")))
      yield* tracker.logMetrics(remoteId, yield* readMetrics(run.dir))
      const inputs = yield* localInputs(experiment.dir, run.dir)
      if (inputs.length > 0) yield* tracker.logInputs(remoteId, inputs)
      const artifacts = artifactsDirOf(run)
      if (yield* exists(artifacts)) {
        // An update re-sends only artifacts the server lacks or holds at another size (checkpoints are large).
        const held = Option.isSome(existing) ? yield* remote.artifactSizes(remoteId) : new Map<string, number>()
        for (const file of yield* artifactFiles(artifacts, "")) {
          if (held.get(file.artifactPath) === file.size) continue
          yield* tracker.logArtifact(remoteId, file.file, posix.dirname(file.artifactPath).replace(/^\.$/, ""))
        }
      }
      if (run.meta.status === "RUNNING" || run.meta.status === "SCHEDULED") yield* tracker.flush(remoteId)
      else yield* tracker.endRun(remoteId, run.meta.status, run.meta.end_time ?? run.meta.start_time)
      // Last: a push cut short leaves no digest, so the next push finishes the run.
      yield* tracker.setTags(remoteId, { [PUSH_DIGEST_TAG]: digest })
      if (Option.isSome(existing)) updated++
      else created++
      yield* onRun(`${Option.isSome(existing) ? "updated" : "created"} ${experiment.meta.name} / ${name} (${localId} → ${remoteId})`)
    }
    return { target: tracker.target, experiments: remoteExperiments.size, created, updated, unchanged } satisfies PushSummary
  })

/** The production RunPush: reads an MLflow folder, replays it through the REST tracker. */
export const runPushLayer = (options: RunPushOptions = {}): Layer.Layer<RunPush> =>
  Layer.succeed(RunPush, {
    push: (sourceDir, targetUri, onRun = () => Effect.void) =>
      Effect.scoped(Effect.gen(function*() {
        const config = yield* restConfig(targetUri, options.env ?? process.env, {
          ...(options.retry === undefined ? {} : { retry: options.retry }),
          ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs })
        })
        const client = makeRestClient(config)
        const tracker = yield* makeRestTracker(client)
        const listArtifacts = (runId: string, path: string): Effect.Effect<ReadonlyArray<[string, number]>, TrackerError> =>
          Effect.flatMap(
            client.call("artifacts/list", "GET", { run_id: runId, ...(path === "" ? {} : { path }) }, ListArtifactsResponse),
            (r) =>
              Effect.map(
                Effect.forEach(r.files, (f) => (f.is_dir ? listArtifacts(runId, f.path) : Effect.succeed([[f.path, f.file_size] as [string, number]]))),
                (lists) => lists.flat()
              )
          )
        const find = (experimentId: string, localRunId: string) =>
          client.call("runs/search", "POST", {
            experiment_ids: [experimentId],
            filter: `tags.\`${LOCAL_RUN_ID_TAG}\` = '${localRunId}'`,
            run_view_type: "ACTIVE_ONLY",
            max_results: 1
          }, SearchRunsResponse).pipe(
            Effect.map((r) =>
              Option.map(Option.fromNullable(r.runs[0]), (run) => ({
                runId: run.info.run_id,
                tags: Object.fromEntries(run.data.tags.map((t) => [t.key, t.value]))
              }))
            )
          )
        const artifactSizes = (runId: string) => Effect.map(listArtifacts(runId, ""), (entries) => new Map(entries))
        return yield* pushRuns(tracker, { find, artifactSizes }, sourceDir, onRun)
      }))
  })
