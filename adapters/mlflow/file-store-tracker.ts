import { Clock, Effect, Option, Ref } from "effect"
import { randomUUID } from "node:crypto"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import {
  type DatasetInput,
  type ImageAtStep,
  type MetricPoint,
  ParamConflictError,
  type RunStatus,
  SARDINE_KEY_TAG,
  SARDINE_RERUN_OF_TAG,
  type StartRunOptions,
  type Tracker,
  TrackerError,
  type TrackerFileError,
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
import {
  datasetId,
  datasetInputId,
  DEFAULT_EXPERIMENT_ID,
  DEFAULT_EXPERIMENT_NAME,
  dumpYaml,
  experimentIdFor,
  experimentMetaYaml,
  fileUri,
  metricLine,
  type RunMeta,
  runMetaYaml,
  TRASH_FOLDER
} from "./file-store-format.ts"
import {
  appendLines,
  copyAtomically,
  exists,
  listExperiments,
  listRuns,
  makeFolder,
  readMetrics,
  readOptionalText,
  readYaml,
  type StoredRun,
  writeAtomically
} from "./file-store.ts"
import { parseRunMeta } from "./file-store-format.ts"
import { imageArtifacts } from "./image-artifacts.ts"

type TrackerService = Tracker["Type"]

const keyPath = (dir: string, key: string) => join(dir, ...key.split("/"))

/** A Tracker writing MLflow's file-store layout, readable by `mlflow ui --backend-store-uri <root>`. */
export const makeFileStoreTracker = (root: string): Effect.Effect<TrackerService> =>
  Effect.gen(function*() {
    // One writer of run meta.yaml at a time in this process (status and run name share the file).
    const metaLock = yield* Effect.makeSemaphore(1)
    const creatingExperiments = yield* Effect.makeSemaphore(1)
    /** A store file that cannot be read, as the error of the operation that needed it. */
    const unreadable = (operation: string) => (e: TrackerFileError) => new TrackerError({ operation, target: root, reason: e.message })

    /** Like FileStore.__init__: a new store starts with the Default experiment and a .trash folder. */
    const ensureRoot = yield* Effect.cached(
      Effect.gen(function*() {
        if (!(yield* exists(root).pipe(Effect.mapError(unreadable("create the store"))))) {
          yield* makeFolder(root, root, "create the store")
          yield* writeExperiment(DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME)
        }
        yield* makeFolder(root, join(root, TRASH_FOLDER), "create .trash")
      })
    )

    function writeExperiment(id: string, name: string) {
      return Effect.gen(function*() {
        const dir = join(root, id)
        yield* makeFolder(root, dir, `create experiment ${id}`)
        const now = yield* Clock.currentTimeMillis
        yield* writeAtomically(
          root,
          join(dir, "meta.yaml"),
          experimentMetaYaml({
            experiment_id: id,
            name,
            artifact_location: fileUri(dir),
            lifecycle_stage: "active",
            creation_time: now,
            last_update_time: now
          }),
          dir
        )
      })
    }

    const getOrCreateExperiment: TrackerService["getOrCreateExperiment"] = (name) =>
      Effect.gen(function*() {
        yield* checkExperimentName(name)
        yield* ensureRoot
        return yield* creatingExperiments.withPermits(1)(Effect.gen(function*() {
          const all = yield* listExperiments(root).pipe(Effect.mapError(unreadable("get experiment")))
          const found = all.find((e) => e.meta.name === name)
          if (found !== undefined) {
            if (found.deleted) {
              return yield* Effect.fail(
                new TrackerError({
                  operation: "get experiment",
                  target: root,
                  reason: `experiment "${name}" is in ${TRASH_FOLDER}: restore it or choose another name`,
                  error_code: "INVALID_STATE"
                })
              )
            }
            return found.meta.experiment_id
          }
          // The id derives from the name, so a concurrent creator writes the same folder; an id already taken
          // by another name (a renamed experiment) moves on to the next candidate.
          for (let attempt = 0;; attempt++) {
            const id = experimentIdFor(name, attempt)
            if (all.some((e) => e.meta.experiment_id === id)) continue
            yield* writeExperiment(id, name)
            return id
          }
        }))
      })

    const experimentDir = (experimentId: string) =>
      Effect.gen(function*() {
        const found = (yield* listExperiments(root).pipe(Effect.mapError(unreadable("create run")))).find((e) => e.meta.experiment_id === experimentId)
        if (found === undefined || found.deleted) {
          return yield* Effect.fail(
            new TrackerError({
              operation: "create run",
              target: root,
              reason: `no active experiment with id ${experimentId}`,
              error_code: "RESOURCE_DOES_NOT_EXIST"
            })
          )
        }
        return found
      })

    // Where each run lives: found once, then read directly (metrics are logged every step).
    const runDirs = yield* Ref.make(new Map<string, string>())

    const readRunAt = (dir: string) =>
      readYaml(join(dir, "meta.yaml")).pipe(
        Effect.map(parseRunMeta),
        Effect.mapError((e) => new TrackerError({ operation: "read run", target: root, reason: e.message }))
      )

    const findRun = (runId: string): Effect.Effect<StoredRun, TrackerError> =>
      Effect.gen(function*() {
        const known = (yield* Ref.get(runDirs)).get(runId)
        const candidates = known !== undefined ?
          [known] :
          (yield* listExperiments(root).pipe(Effect.mapError(unreadable("find run")))).map((e) => join(e.dir, runId))
        for (const dir of candidates) {
          if (!(yield* exists(join(dir, "meta.yaml")).pipe(Effect.mapError(unreadable("find run"))))) continue
          const meta = yield* readRunAt(dir)
          if (meta === undefined) continue
          yield* Ref.update(runDirs, (m) => new Map(m).set(runId, dir))
          return { dir, meta }
        }
        return yield* Effect.fail(new TrackerError({ operation: "find run", target: root, reason: `no run ${runId}`, error_code: "RESOURCE_DOES_NOT_EXIST" }))
      })

    const writeRunMeta = (dir: string, meta: RunMeta) => writeAtomically(root, join(dir, "meta.yaml"), runMetaYaml(meta), dir)

    const updateRunMeta = (runId: string, change: (meta: RunMeta) => RunMeta) =>
      metaLock.withPermits(1)(Effect.flatMap(findRun(runId), (run) => writeRunMeta(run.dir, change(run.meta))))

    const writeTags = (run: StoredRun, tags: Readonly<Record<string, string>>) =>
      Effect.forEach(Object.entries(tags), ([key, value]) => writeAtomically(root, keyPath(join(run.dir, "tags"), key), value, run.dir), {
        discard: true
      })

    const tagOf = (run: StoredRun, key: string) => readOptionalText(keyPath(join(run.dir, "tags"), key)).pipe(Effect.mapError(unreadable("start run")))

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
        yield* ensureRoot
        const experiment = yield* experimentDir(opts.experimentId)
        if (opts.reuseKey !== undefined) {
          const candidates: Array<StoredRun> = []
          for (const run of yield* listRuns(experiment.dir).pipe(Effect.mapError(unreadable("start run")))) {
            if (run.meta.lifecycle_stage !== "active") continue
            const key = yield* tagOf(run, SARDINE_KEY_TAG)
            if (Option.getOrUndefined(key) !== opts.reuseKey) continue
            if (opts.parentRunId !== undefined && Option.getOrUndefined(yield* tagOf(run, MLFLOW_PARENT_RUN_ID)) !== opts.parentRunId) continue
            candidates.push(run)
          }
          const latest = candidates.sort((a, b) => b.meta.start_time - a.meta.start_time)[0]
          if (latest !== undefined && opts.rerun === true) {
            // A run of its own, which, started last with the key, is the one later runs reuse.
            tags[SARDINE_RERUN_OF_TAG] = latest.meta.run_id
          } else if (latest !== undefined) {
            yield* updateRunMeta(latest.meta.run_id, (m) => ({ ...m, status: "RUNNING", run_name: opts.name }))
            yield* writeTags(latest, tags)
            const latestSteps: Record<string, number> = {}
            const points = yield* readMetrics(latest.dir).pipe(
              Effect.mapError((e) => new TrackerError({ operation: "read metrics", target: root, reason: e.message }))
            )
            for (const p of points) latestSteps[p.key] = Math.max(p.step, latestSteps[p.key] ?? -Infinity)
            return { runId: latest.meta.run_id, experimentId: opts.experimentId, name: opts.name, reused: true, latestSteps }
          }
        }
        const runId = randomUUID().replace(/-/g, "")
        const dir = join(experiment.dir, runId)
        const artifactRoot = experiment.meta.artifact_location.startsWith("file:")
          ? `${experiment.meta.artifact_location.replace(/\/+$/, "")}/${runId}/artifacts`
          : fileUri(join(dir, "artifacts"))
        const meta: RunMeta = {
          run_id: runId,
          experiment_id: opts.experimentId,
          run_name: opts.name,
          user_id: tags[MLFLOW_USER] ?? "",
          status: "RUNNING",
          start_time: opts.startTime ?? (yield* Clock.currentTimeMillis),
          end_time: null,
          artifact_uri: artifactRoot,
          lifecycle_stage: "active"
        }
        yield* makeFolder(root, dir, `create run ${runId}`)
        yield* writeRunMeta(dir, meta)
        for (const sub of ["metrics", "params", "artifacts"]) yield* makeFolder(root, join(dir, sub), `create run ${runId}`)
        yield* writeTags({ dir, meta }, tags)
        return { runId, experimentId: opts.experimentId, name: opts.name, reused: false }
      })

    const logParams: TrackerService["logParams"] = (runId, params) =>
      Effect.gen(function*() {
        yield* checkParams(params)
        const run = yield* findRun(runId)
        for (const [key, value] of Object.entries(params)) {
          const file = keyPath(join(run.dir, "params"), key)
          const logged = yield* readOptionalText(file).pipe(Effect.mapError(unreadable("log params")))
          if (Option.isSome(logged)) {
            if (logged.value === value) continue
            return yield* Effect.fail(new ParamConflictError({ runId, key, logged: logged.value, attempted: value }))
          }
          yield* writeAtomically(root, file, value, run.dir)
        }
      })

    const logMetrics: TrackerService["logMetrics"] = (runId, points: ReadonlyArray<MetricPoint>) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const stamped = points.map((p) => ({ key: p.key, value: p.value, step: p.step, timestamp: p.timestamp ?? now }))
        yield* Effect.forEach(stamped, checkMetric, { discard: true })
        if (stamped.length === 0) return
        const run = yield* findRun(runId)
        const byKey = new Map<string, string>()
        for (const p of stamped) byKey.set(p.key, (byKey.get(p.key) ?? "") + metricLine(p))
        yield* Effect.forEach(byKey, ([key, lines]) => appendLines(root, keyPath(join(run.dir, "metrics"), key), lines), { discard: true })
      })

    const setTags: TrackerService["setTags"] = (runId, tags) =>
      Effect.gen(function*() {
        yield* checkTags(tags)
        const run = yield* findRun(runId)
        yield* writeTags(run, tags)
        // FileStore keeps meta.yaml's run_name in step with the mlflow.runName tag.
        const name = tags[MLFLOW_RUN_NAME]
        if (name !== undefined) yield* updateRunMeta(runId, (m) => ({ ...m, run_name: name }))
      })

    const logInputs: TrackerService["logInputs"] = (runId, inputs: ReadonlyArray<DatasetInput>) =>
      Effect.gen(function*() {
        yield* Effect.forEach(inputs, checkDataset, { discard: true })
        const run = yield* findRun(runId)
        const experiment = yield* experimentDir(run.meta.experiment_id)
        for (const input of inputs) {
          const id = datasetId(input.name, input.digest)
          const datasetMeta = join(experiment.dir, "datasets", id, "meta.yaml")
          if (!(yield* exists(datasetMeta).pipe(Effect.mapError(unreadable("log inputs"))))) {
            yield* writeAtomically(
              root,
              datasetMeta,
              dumpYaml({
                digest: input.digest,
                name: input.name,
                profile: null,
                schema: null,
                ...datasetSource(input.source)
              }),
              experiment.dir
            )
          }
          const inputMeta = join(run.dir, "inputs", datasetInputId(id, runId), "meta.yaml")
          yield* writeAtomically(
            root,
            inputMeta,
            dumpYaml({
              destination_id: runId,
              destination_type: "RUN",
              source_id: id,
              source_type: "DATASET",
              tags: input.context === undefined ? {} : { [DATASET_CONTEXT_TAG]: input.context }
            }),
            run.dir
          )
        }
      })

    const artifactsDirOf = (run: StoredRun) => run.meta.artifact_uri.startsWith("file:") ? fileURLToPath(run.meta.artifact_uri) : join(run.dir, "artifacts")

    const logArtifact: TrackerService["logArtifact"] = (runId, localPath, artifactPath = "") =>
      Effect.gen(function*() {
        yield* checkArtifactPath(artifactPath)
        const run = yield* findRun(runId)
        const files = yield* artifactFiles(localPath, artifactPath)
        const target = artifactsDirOf(run)
        yield* Effect.forEach(files, (f) => copyAtomically(root, f.file, keyPath(target, f.artifactPath), run.dir), { discard: true })
      })

    const logImage: TrackerService["logImage"] = (runId, image: ImageAtStep) =>
      Effect.gen(function*() {
        yield* checkImageKey(image.key)
        if (!Number.isSafeInteger(image.step)) {
          return yield* Effect.fail(new TrackingInputError({ field: `image "${image.key}" step`, value: String(image.step), rule: "must be an integer" }))
        }
        const run = yield* findRun(runId)
        const files = yield* imageArtifacts(image.file, image.key, image.step, image.timestamp ?? (yield* Clock.currentTimeMillis), image.id)
        const target = artifactsDirOf(run)
        yield* writeAtomically(root, keyPath(target, files.png.artifactPath), files.png.bytes, run.dir)
        yield* writeAtomically(root, keyPath(target, files.thumbnail.artifactPath), files.thumbnail.bytes, run.dir)
        yield* writeTags(run, { [MLFLOW_LOGGED_IMAGES]: "True" })
      })

    const endRun: TrackerService["endRun"] = (runId, status: RunStatus, endTime) =>
      Effect.gen(function*() {
        const end = endTime ?? (yield* Clock.currentTimeMillis)
        yield* updateRunMeta(runId, (m) => ({ ...m, status, end_time: end }))
      })

    return {
      target: root,
      getOrCreateExperiment,
      startRun,
      logParams,
      logMetrics,
      setTags,
      logInputs,
      logArtifact,
      logImage,
      flush: () => Effect.void,
      endRun
    }
  })
