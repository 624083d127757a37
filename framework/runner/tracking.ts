import { Cause, Effect, Exit, Scope } from "effect"
import { hostname, userInfo } from "node:os"
import { contentHash } from "../declaration/canonical-json.ts"
import { encodeDeclaration } from "../declaration/decode.ts"
import { type Experiment, experimentsOf } from "../declaration/experiment.ts"
import { replicatesOf, replicatesOfExperiment } from "../declaration/replicates.ts"
import type { LoadedDeclaration } from "../declaration/load.ts"
import type { Plan, Step } from "../plan/step.ts"
import { Tracker, type MetricPoint, type RunEndStatus, type TrackedRun } from "../services/tracker.ts"
import { flattenParams, type Json } from "../tracking/flatten-params.ts"
import { gitCommitOf } from "../tracking/git-commit.ts"
import { systemTags } from "../tracking/system-tags.ts"
import { replicateTags } from "../tracking/tracked-run.ts"
import type { StepOutcome } from "./runner.ts"

/**
 * What a run of a declaration records in MLflow (DESIGN §8): a parent run per study with a child
 * run per experiment (a lone experiment is one run); an experiment trained with several seeds has
 * a child run per replicate under its own, which carries the mean over them. Params are the
 * flattened declaration and the content keys of its steps. Runs are found again by their content
 * key, so rerunning a cached study reuses its runs instead of adding new ones.
 */
export interface RunsOfDeclaration {
  /** MLflow experiment id (one per study). */
  readonly experimentId: string
  /** The study's parent run; for a lone experiment, that experiment's run. */
  readonly top: TrackedRun
  /** Run of each experiment by name, and of each replicate by its name (`<experiment>#<r>`). */
  readonly experiments: ReadonlyMap<string, TrackedRun>
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
  /** Where the runs live and their ids, for links in reports. */
  readonly target: string
  readonly experimentId: string
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
 * Opens (or reuses) the runs of a declaration for the scope; closing the scope ends each with the
 * status its steps earned — FINISHED, FAILED (a step failed or was blocked), KILLED (interrupted).
 * `outcome` is read when the scope closes.
 */
export const openRuns = (
  loaded: LoadedDeclaration,
  plan: Plan,
  outcome: () => Exit.Exit<ReadonlyArray<StepOutcome>, unknown>,
  backend: string | undefined
): Effect.Effect<RunsOfDeclaration, unknown, Tracker | Scope.Scope> =>
  Effect.gen(function*() {
    const tracker = yield* Tracker
    const { declaration, file } = loaded
    const commit = yield* gitCommitOf(file)
    const tags = (runName: string, parentRunId?: string) =>
      systemTags({
        runName,
        sardineVersion: version,
        user: userInfo().username,
        host: hostname(),
        sourceName: file,
        gitCommit: commit._tag === "Some" ? commit.value : undefined,
        backend,
        parentRunId
      })
    const experimentId = yield* tracker.getOrCreateExperiment(plan.name)
    const start = (name: string, reuseKey: string, parentRunId: string | undefined, status: () => RunEndStatus) =>
      Effect.acquireRelease(
        tracker.startRun({ experimentId, name, reuseKey, parentRunId, tags: tags(name, parentRunId) }),
        (run) =>
          tracker.endRun(run.runId, status()).pipe(
            Effect.catchAll((error) => Effect.logWarning(`could not end MLflow run ${run.runId}: ${error.message}`))
          )
      )
    const stepParams = (steps: ReadonlyArray<Step>) => Object.fromEntries(steps.map((s) => [`steps.${s.id.split("/").at(-1)}.key`, s.key]))

    const experimentRuns = new Map<string, TrackedRun>()
    /** Child runs of an experiment trained with several seeds, one per replicate, under its (summary) run. */
    const replicateRuns = (experiment: Experiment, parent: TrackedRun) =>
      Effect.forEach(replicatesOfExperiment(experiment, declaration), (replicate) =>
        Effect.gen(function*() {
          const steps = plan.steps.filter((s) => s.kind !== "report" && s.experiments.includes(replicate.name))
          const run = yield* Effect.acquireRelease(
            tracker.startRun({
              experimentId,
              name: replicate.name,
              reuseKey: keyOfSteps(steps),
              parentRunId: parent.runId,
              tags: { ...tags(replicate.name, parent.runId), ...replicateTags(replicate.replicate, replicate.replicates) }
            }),
            (run) =>
              tracker.endRun(run.runId, statusOf(outcome(), [replicate.name])).pipe(
                Effect.catchAll((error) => Effect.logWarning(`could not end MLflow run ${run.runId}: ${error.message}`))
              )
          )
          yield* tracker.logParams(run.runId, { ...flattenParams(encodeDeclaration(replicate.experiment) as Json), ...stepParams(steps) })
          experimentRuns.set(replicate.name, run)
        }), { discard: true })
    const namesOf = (experiment: Experiment) => [experiment.name, ...replicatesOfExperiment(experiment, declaration).map((r) => r.name)]
    let top: TrackedRun
    if (declaration.kind === "study") {
      top = yield* start(plan.name, keyOfSteps(plan.steps), undefined, () => statusOf(outcome()))
      yield* tracker.logParams(top.runId, {
        "study.experiments": JSON.stringify(declaration.experiments.map((e) => e.name)),
        ...(plan.steps.some((s) => s.kind === "report") ? { "steps.report.key": plan.steps.find((s) => s.kind === "report")!.key } : {})
      })
      for (const experiment of experimentsOf(declaration)) {
        const steps = plan.steps.filter((s) => s.kind !== "report" && s.experiments.includes(experiment.name))
        const run = yield* start(experiment.name, keyOfSteps(steps), top.runId, () => statusOf(outcome(), namesOf(experiment)))
        yield* tracker.logParams(run.runId, { ...flattenParams(encodeDeclaration(experiment) as Json), ...stepParams(steps) })
        experimentRuns.set(experiment.name, run)
        if (replicatesOf(experiment, declaration) > 1) yield* replicateRuns(experiment, run)
      }
    } else {
      // A lone experiment or CLIP model is one run (with its replicates' runs under it).
      top = yield* start(plan.name, keyOfSteps(plan.steps), undefined, () => statusOf(outcome()))
      const own = plan.steps.filter((s) => s.kind !== "report" && s.experiments.includes(declaration.name))
      yield* tracker.logParams(top.runId, { ...flattenParams(encodeDeclaration(declaration) as Json), ...stepParams(own) })
      experimentRuns.set(declaration.name, top)
      if (declaration.kind === "experiment" && replicatesOf(declaration) > 1) yield* replicateRuns(declaration, top)
    }
    return { experimentId, top, experiments: experimentRuns, ...(backend === undefined ? {} : { backend }) }
  })

/** Tracking failures during a step are reported, never fatal: results matter more than their log. */
const quietly = (what: string) => <E extends { message: string }>(effect: Effect.Effect<void, E>) =>
  effect.pipe(Effect.catchAll((error) => Effect.logWarning(`MLflow: could not log ${what}: ${error.message}`)))

/** The logging handle of one step: a report logs to the study's run, other steps to their experiments' runs. */
export const stepTracking = (tracker: Tracker["Type"], runs: RunsOfDeclaration, step: Step): StepTracking => {
  const targets = step.kind === "report"
    ? [runs.top]
    : step.experiments.map((name) => runs.experiments.get(name)).filter((r): r is TrackedRun => r !== undefined)
  const each = (what: string, log: (run: TrackedRun) => Effect.Effect<void, { message: string }>, runs = targets) =>
    quietly(what)(Effect.forEach(runs, log, { discard: true }))
  const logValues = (at: number, values: Readonly<Record<string, number>>) => (run: TrackedRun) => {
    const timestamp = Date.now()
    const points: Array<MetricPoint> = Object.entries(values).map(([key, value]) => ({ key, value, step: at, timestamp }))
    return tracker.logMetrics(run.runId, points)
  }
  return {
    metrics: (at, values) => each("metrics", logValues(at, values)),
    metricsOf: (experiment, at, values) => {
      const run = runs.experiments.get(experiment)
      return run === undefined ? Effect.void : each(`metrics of ${experiment}`, logValues(at, values), [run])
    },
    image: (key, at, file) => each(`image ${file}`, (run) => tracker.logImage(run.runId, { key, step: at, file })),
    artifact: (localPath, artifactPath) => each(`artifact ${localPath}`, (run) => tracker.logArtifact(run.runId, localPath, artifactPath)),
    datasetInput: (input) => each(`dataset ${input.name}`, (run) => tracker.logInputs(run.runId, [input])),
    target: tracker.target,
    experimentId: runs.experimentId,
    runIds: Object.fromEntries([...runs.experiments].map(([name, run]) => [name, run.runId])),
    ...(runs.backend === undefined ? {} : { backend: runs.backend })
  }
}
