import type { FileSystem } from "@effect/platform"
import { Cause, Clock, Effect, Exit, Option, type Scope } from "effect"
import { randomUUID } from "node:crypto"
import { hostname, userInfo } from "node:os"
import { resolve } from "node:path"
import { contentHash } from "../declaration/canonical-json.ts"
import { encodeDeclaration } from "../declaration/decode.ts"
import { type Experiment, experimentsOf } from "../declaration/experiment.ts"
import { replicatesOf, replicatesOfExperiment } from "../declaration/replicates.ts"
import type { LoadedDeclaration } from "../declaration/load.ts"
import type { Plan, Step } from "../plan/step.ts"
import { type RunEndStatus, TrackerFactory, type TrackingInputError } from "../services/tracker.ts"
import { cacheIdentity } from "../tracking/cache-identity.ts"
import { flattenParams, type Json } from "../tracking/flatten-params.ts"
import { gitCommitOf } from "../tracking/git-commit.ts"
import { claimSessions, openOwnSession, type SpoolError, spoolFolderOf } from "../tracking/spool.ts"
import { backlogText, spoolBacklog } from "../tracking/spool-backlog.ts"
import { systemTags } from "../tracking/system-tags.ts"
import { makeTrackingQueue, type QueueRetryPolicy, type TrackingQueue, TrackingUnavailable } from "../tracking/tracking-queue.ts"
import { Progress } from "./progress.ts"
import { replicateTags } from "../tracking/tracked-run.ts"
import type { StepOutcome } from "./runner.ts"

/**
 * What a run of a declaration records in MLflow (DESIGN §8): a parent run per study with a child
 * run per experiment (a lone experiment is one run); an experiment trained with several seeds has
 * a child run per replicate under its own, which carries the mean over them. Params are the
 * flattened declaration and the content keys of its steps. A run is found again by its content key
 * and its cache's identity, so rerunning a cached study reuses its runs, and a second cache folder
 * gets runs of its own. A forced rerun (`--force`) of an experiment's steps gets a new run of the
 * experiment, tagged as a rerun of the old one (SARDINE_RERUN_OF_TAG), which later runs reuse: reusing the
 * old run would have dropped the rerun's metrics, whose steps the old run has logged already (and mixed two
 * trainings' curves otherwise). Runs are named by references (their reuse keys) because they may open after
 * the steps start logging: everything goes through the tracking queue (framework/tracking/tracking-queue.ts).
 */
export interface RunsOfDeclaration {
  /** The study's parent run; for a lone experiment, that experiment's run. */
  readonly top: string
  /** The run of each experiment by name, and of each replicate by its name (`<experiment>#<r>`). */
  readonly experiments: ReadonlyMap<string, string>
  /** The tensor backend the steps compute on, when known. */
  readonly backend?: string
}

/** What a step may log; every call goes to the runs of the experiments the step serves. */
export interface StepTracking {
  readonly metrics: (step: number, values: Readonly<Record<string, number>>) => Effect.Effect<void>
  /** Metrics of one experiment's run (for the report: each replicated experiment's summary run carries the mean over its replicates). */
  readonly metricsOf: (experiment: string, step: number, values: Readonly<Record<string, number>>) => Effect.Effect<void>
  readonly image: (key: string, step: number, file: string) => Effect.Effect<void>
  readonly artifact: (localPath: string, artifactPath?: string) => Effect.Effect<void>
  readonly datasetInput: (input: { name: string; digest: string; source: string; context: string }) => Effect.Effect<void>
  /** Where the runs live, for links in reports. */
  readonly target: string
  /** The MLflow experiment and the run ids of the experiments, once the store has answered. */
  readonly experimentId?: string
  readonly runIds: Readonly<Record<string, string>>
  readonly backend?: string
}

const version = "0.1.0"

const keyOfSteps = (steps: ReadonlyArray<Step>) => contentHash(steps.map((s) => s.key)).slice(0, 20)

/** `names`: the experiment (and its replicates) a run stands for; none for the study's run. */
const statusOf = (exit: Exit.Exit<ReadonlyArray<StepOutcome>, unknown>, names?: ReadonlyArray<string>): RunEndStatus => {
  if (Exit.isFailure(exit)) return Cause.isInterruptedOnly(exit.cause) ? "KILLED" : "FAILED"
  // The report serves every experiment but belongs to the study: it does not fail an experiment.
  const mine = names === undefined
    ? exit.value
    : exit.value.filter((o) => o.step.kind !== "report" && o.step.experiments.some((e) => names.includes(e)))
  return mine.some((o) => o.status === "failed" || o.status === "blocked") ? "FAILED" : "FINISHED"
}

/**
 * Queues the opening of a declaration's runs; closing the scope queues the end of each, with the status
 * its steps earned — FINISHED, FAILED (a step failed or was blocked), KILLED (interrupted). `outcome` is
 * read when the scope closes.
 */
export const openRuns = (
  queue: TrackingQueue,
  loaded: LoadedDeclaration,
  plan: Plan,
  outcome: () => Exit.Exit<ReadonlyArray<StepOutcome>, unknown>,
  options: {
    readonly backend: string | undefined
    readonly cacheDir: string
    readonly cacheId: string
    readonly served?: Step
    /** The steps this run reruns though cached (`--force`). */
    readonly forced?: ReadonlySet<string>
  }
): Effect.Effect<RunsOfDeclaration, never, Scope.Scope | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const { declaration, file } = loaded
    const { backend, cacheId } = options
    // The commit is a tag, not what the run needs: a repository that cannot be read costs the tag, and says so.
    const commit = yield* gitCommitOf(file).pipe(
      Effect.catchAll((e) => Effect.as(Effect.logWarning(`the runs get no git commit tag: ${e.message}`), Option.none<string>()))
    )
    const tags = (runName: string) =>
      systemTags({
        runName,
        sardineVersion: version,
        user: userInfo().username,
        host: hostname(),
        sourceName: file,
        gitCommit: commit._tag === "Some" ? commit.value : undefined,
        backend,
        cacheDir: resolve(options.cacheDir)
      })
    const open = (
      name: string,
      steps: ReadonlyArray<Step>,
      params: Record<string, string>,
      status: () => RunEndStatus | undefined,
      parent?: string,
      extraTags: Record<string, string> = {},
      rerun = steps.some((s) => options.forced?.has(s.id) === true)
    ) =>
      Effect.gen(function*() {
        const ref = `${keyOfSteps(steps)}.${cacheId}`
        yield* queue.enqueue({
          op: "open",
          run: ref,
          experiment: plan.name,
          name,
          reuseKey: ref,
          ...(rerun ? { rerun } : {}),
          ...(parent === undefined ? {} : { parent }),
          tags: { ...tags(name), ...extraTags },
          params
        })
        yield* Effect.addFinalizer(() =>
          Effect.flatMap(Clock.currentTimeMillis, (endTime) => {
            const ended = status()
            return ended === undefined ? Effect.void : queue.enqueue({ op: "end", run: ref, status: ended, endTime })
          })
        )
        return ref
      })
    const stepParams = (steps: ReadonlyArray<Step>) => Object.fromEntries(steps.map((s) => [`steps.${s.id.split("/").at(-1)}.key`, s.key]))

    const experimentRuns = new Map<string, string>()
    /**
     * Whether this process logs to the run of an experiment (or replicate): a process that runs one step other
     * than the report (a SLURM job's or a child's `sardine step`) opens only the runs of that step's experiments
     * and the runs they sit under, not the study's every run (a store's worth of requests per step).
     */
    const logsTo = (names: ReadonlyArray<string>) => {
      const served = options.served
      return served === undefined || served.kind === "report" || names.some((n) => served.experiments.includes(n))
    }
    /** Child runs of an experiment trained with several seeds, one per replicate, under its (summary) run. */
    const replicateRuns = (experiment: Experiment, parent: string) =>
      Effect.forEach(replicatesOfExperiment(experiment, declaration).filter((r) => logsTo([r.name])), (replicate) =>
        Effect.gen(function*() {
          const steps = plan.steps.filter((s) => s.kind !== "report" && s.experiments.includes(replicate.name))
          const params = { ...flattenParams(encodeDeclaration(replicate.experiment) as Json), ...stepParams(steps) }
          const run = yield* open(
            replicate.name,
            steps,
            params,
            () => endOf([replicate.name]),
            parent,
            replicateTags(replicate.replicate, replicate.replicates)
          )
          experimentRuns.set(replicate.name, run)
        }), { discard: true })
    /**
     * The status a run ends with. A process that runs one step of the plan (`served`: a SLURM job's
     * `sardine step`) ends only the runs of that step's experiments (the study's run: the report's); the
     * others belong to the process that runs the plan, which ends them when every step is done.
     */
    const endOf = (names: ReadonlyArray<string> | undefined, lone = false): RunEndStatus | undefined => {
      const served = options.served
      if (served !== undefined) {
        const mine = lone || (names === undefined ? served.kind === "report" : served.kind !== "report" && served.experiments.some((e) => names.includes(e)))
        if (!mine) return undefined
      }
      return statusOf(outcome(), names)
    }
    const namesOf = (experiment: Experiment) => [experiment.name, ...replicatesOfExperiment(experiment, declaration).map((r) => r.name)]
    let top: string
    if (declaration.kind === "study") {
      const report = plan.steps.find((s) => s.kind === "report")
      // The study's run is kept: it holds its experiments' runs, a rerun's beside the one it reran.
      top = yield* open(
        plan.name,
        plan.steps,
        {
          "study.experiments": JSON.stringify(declaration.experiments.map((e) => e.name)),
          ...(report === undefined ? {} : { "steps.report.key": report.key })
        },
        () => endOf(undefined),
        undefined,
        {},
        false
      )
      for (const experiment of experimentsOf(declaration).filter((e) => logsTo(namesOf(e)))) {
        const steps = plan.steps.filter((s) => s.kind !== "report" && s.experiments.includes(experiment.name))
        const params = { ...flattenParams(encodeDeclaration(experiment) as Json), ...stepParams(steps) }
        const run = yield* open(experiment.name, steps, params, () => endOf(namesOf(experiment)), top)
        experimentRuns.set(experiment.name, run)
        if (replicatesOf(experiment, declaration) > 1) yield* replicateRuns(experiment, run)
      }
    } else {
      // A lone experiment or CLIP model is one run (with its replicates' runs under it).
      const own = plan.steps.filter((s) => s.kind !== "report" && s.experiments.includes(declaration.name))
      const params = { ...flattenParams(encodeDeclaration(declaration) as Json), ...stepParams(own) }
      top = yield* open(plan.name, plan.steps, params, () => endOf(undefined, true))
      experimentRuns.set(declaration.name, top)
      if (declaration.kind === "experiment" && replicatesOf(declaration) > 1) yield* replicateRuns(declaration, top)
    }
    return { top, experiments: experimentRuns, ...(backend === undefined ? {} : { backend }) }
  })

/** The logging handle of one step: a report logs to the study's run, other steps to their experiments' runs. */
export const stepTracking = (queue: TrackingQueue, runs: RunsOfDeclaration, step: Step): StepTracking => {
  const targets = step.kind === "report"
    ? [runs.top]
    : step.experiments.map((name) => runs.experiments.get(name)).filter((r): r is string => r !== undefined)
  const each = (log: (run: string) => Effect.Effect<void>, runs = targets) => Effect.forEach(runs, log, { discard: true })
  const now = Clock.currentTimeMillis
  const runIds: Record<string, string> = {}
  for (const [name, ref] of runs.experiments) {
    const opened = queue.runOf(ref)
    if (Option.isSome(opened)) runIds[name] = opened.value.runId
  }
  const experimentId = Option.getOrUndefined(Option.map(queue.runOf(runs.top), (r) => r.experimentId))
  const logValues = (at: number, values: Readonly<Record<string, number>>, runs = targets) =>
    Effect.flatMap(
      now,
      (timestamp) =>
        each((run) => queue.enqueue({ op: "metrics", run, points: Object.entries(values).map(([key, value]) => ({ key, value, step: at, timestamp })) }), runs)
    )
  return {
    metrics: (at, values) => logValues(at, values),
    metricsOf: (experiment, at, values) => {
      const run = runs.experiments.get(experiment)
      return run === undefined ? Effect.void : logValues(at, values, [run])
    },
    // A fixed id per image: sending it again (after a lost answer) replaces it rather than adding a copy.
    image: (key, at, file) =>
      Effect.flatMap(now, (timestamp) => {
        const id = randomUUID()
        return each((run) => queue.enqueue({ op: "image", run, key, step: at, timestamp, id, file: "" }, file))
      }),
    artifact: (localPath, artifactPath = "") => each((run) => queue.enqueue({ op: "artifact", run, path: "", artifactPath }, localPath)),
    datasetInput: (input) => each((run) => queue.enqueue({ op: "inputs", run, inputs: [input] })),
    target: queue.target,
    ...(experimentId === undefined ? {} : { experimentId }),
    runIds,
    ...(runs.backend === undefined ? {} : { backend: runs.backend })
  }
}

export interface OpenTrackingOptions {
  readonly loaded: LoadedDeclaration
  readonly plan: Plan
  readonly cacheDir: string
  /** The tracking URI (http[s]://, file:, a folder; absent: MLFLOW_TRACKING_URI, else ./mlruns). */
  readonly uri: string | undefined
  readonly backend: string | undefined
  /** How the steps ended, read when the runs end. */
  readonly outcome: () => Exit.Exit<ReadonlyArray<StepOutcome>, unknown>
  /**
   * False: the run starts only once its runs are open, and fails when the store cannot be reached within
   * `startWithinMs`. True: it starts at once, its tracking spooled until the store answers.
   */
  readonly optional: boolean
  /** The one step this process runs (`sardine step`): only its runs are ended here (see openRuns). */
  readonly served?: Step
  /** The steps the run reruns though cached (`--force`): their experiments get new runs (see openRuns). */
  readonly forced?: ReadonlySet<string>
  readonly startWithinMs?: number
  readonly retry?: QueueRetryPolicy
}

export interface RunTracking {
  readonly target: string
  readonly queue: TrackingQueue
  readonly runs: RunsOfDeclaration
  readonly forStep: (step: Step) => StepTracking
}

/** How long a run waits for its tracking store at start before it fails (without --tracking-optional). */
export const defaultStartWithinMs = 10_000

/**
 * The tracking of a run of a declaration: the store the URI names, behind a queue spooled in the cache
 * (`<cache>/tracking/spool`), what earlier runs left there for the same store sent first, and the runs of
 * the declaration opened. Closing the scope ends the runs and sends what it can (see TrackingQueue).
 */
export const openTracking = (
  options: OpenTrackingOptions
): Effect.Effect<RunTracking, TrackingUnavailable | TrackingInputError | SpoolError, TrackerFactory | Progress | Scope.Scope | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const progress = yield* Progress
    const tracker = yield* (yield* TrackerFactory).open(options.uri, { queued: true })
    const cacheId = yield* cacheIdentity(options.cacheDir)
    const spoolDir = spoolFolderOf(options.cacheDir)
    const later = `the next run sends them, or \`sardine mlflow push ${options.cacheDir}\``
    // What earlier runs left unsent, said before any of it is sent: a store that never answers again keeps its items here.
    for (const backlog of yield* spoolBacklog(spoolDir)) {
      yield* progress.note(
        backlog.target === tracker.target
          ? `${backlogText(backlog, spoolDir)}: sent first`
          : `${backlogText(backlog, spoolDir)}: \`sardine mlflow push ${options.cacheDir}\` sends them there (--to URI: elsewhere)`
      )
    }
    const earlier = yield* claimSessions(spoolDir, tracker.target)
    const own = yield* openOwnSession(spoolDir, tracker.target)
    const queue = yield* makeTrackingQueue({
      tracker,
      own,
      earlier,
      notify: progress.note,
      spoolDir,
      later,
      ...(options.retry === undefined ? {} : { retry: options.retry })
    })
    const runs = yield* openRuns(queue, options.loaded, options.plan, options.outcome, {
      backend: options.backend,
      cacheDir: options.cacheDir,
      cacheId,
      ...(options.served === undefined ? {} : { served: options.served }),
      ...(options.forced === undefined ? {} : { forced: options.forced })
    })
    if (!options.optional) {
      yield* queue.awaitRuns([runs.top, ...runs.experiments.values()], options.startWithinMs ?? defaultStartWithinMs).pipe(
        Effect.mapError((e) =>
          new TrackingUnavailable({
            target: e.target,
            reason: `${e.reason}. Start it, or add --tracking-optional to run with tracking spooled in ${spoolDir} until it answers`
          })
        )
      )
    }
    return { target: tracker.target, queue, runs, forStep: (step) => stepTracking(queue, runs, step) }
  })
