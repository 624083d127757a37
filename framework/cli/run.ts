import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Console, type Duration, Effect, Exit, FiberId, Option, Schema } from "effect"
import { availableParallelism } from "node:os"
import { join, relative, resolve } from "node:path"
import type { LoadedDeclaration } from "../declaration/load.ts"
import { enginesOf, type Plan } from "../plan/step.ts"
import { stepResources } from "../plan/step-resources.ts"
import { cacheLayout, type OutputState } from "../runner/cache.ts"
import { outputStates, selectSteps, type StepOutcome } from "../runner/runner.ts"
import { StepImplementations } from "../runner/step-implementations.ts"
import { openTracking } from "../runner/tracking.ts"
import type { EngineName } from "../services/engine.ts"
import { ExecutorFactory, type ExecutorChoice } from "../services/executor.ts"
import { checkDeclaredFolders } from "../runner/preflight.ts"
import { cacheDirOption } from "./cache-dir.ts"
import { checkAgainstArchitecture } from "./architecture-check.ts"
import { checkGpuMemory } from "./resources-plan.ts"
import { declarationFile } from "./declaration-file.ts"
import { loadPlan } from "./declaration-plan.ts"
import { engineOption } from "./engine-option.ts"
import { designatedSteps, lockLeaseOption, stepList, unknownSteps } from "./step-options.ts"

export class RunFailed extends Schema.TaggedError<RunFailed>()("RunFailed", {
  failed: Schema.Array(Schema.String)
}) {
  override get message() {
    return `${this.failed.length} step(s) did not finish:\n  ${this.failed.join("\n  ")}`
  }
}

const only = Options.text("only").pipe(
  Options.repeated,
  Options.withDescription("Run only these steps (ids or kinds, repeatable or comma-separated) and the inputs they need")
)
const force = Options.text("force").pipe(
  Options.repeated,
  Options.withDescription(
    "Run these steps again from scratch even when cached (ids or kinds, repeatable or comma-separated; `all` for every selected step). " +
      "The steps that read them keep their cached outputs. Their experiments get new MLflow runs, tagged sardine.rerunOf with the run before"
  )
)
const dryRun = Options.boolean("dry-run").pipe(Options.withDescription("Print what would run, run nothing"))
export const trackingUriOption = Options.text("tracking-uri").pipe(
  Options.optional,
  Options.withDescription("MLflow server (http[s]://…) or local folder for the runs (default: MLFLOW_TRACKING_URI, else ./mlruns)")
)
export const trackingOptionalOption = Options.boolean("tracking-optional").pipe(
  Options.withDescription(
    "Run even when the tracking server cannot be reached at start: what the run logs waits in <cache>/tracking/spool " +
      "and is sent once the server answers (by this run, the next one, or `sardine mlflow push <cache>`)"
  )
)
const concurrency = Options.integer("concurrency").pipe(
  Options.optional,
  Options.withDescription(
    "Steps run at once (default: the study's `concurrency`, else 1; with --executor processes, else the machine's cores)"
  )
)

const executor = Options.choice("executor", ["local", "processes", "slurm"]).pipe(
  Options.withDefault("local" as const),
  Options.withDescription(
    "Where steps run: in this process (local), each in a child process of its own, several at once on this machine's cores " +
      "(processes), or as SLURM batch jobs (slurm) with the study's `resources`"
  )
)
const partition = Options.text("partition").pipe(
  Options.optional,
  Options.withDescription("With --executor slurm: the partition of every job (over the study's resources)")
)
const account = Options.text("account").pipe(
  Options.optional,
  Options.withDescription("With --executor slurm: the account every job is charged to (over the study's resources)")
)
const ssh = Options.text("ssh").pipe(
  Options.optional,
  Options.withDescription("With --executor slurm: run sbatch, squeue, sacct and scancel on this login node through ssh")
)

/** The executor and its options, checked together: the slurm options make no sense for the local runner. */
const executorChoice = Options.all({ executor, partition, account, ssh }).pipe(
  Options.mapEffect(({ executor, ...slurm }): Effect.Effect<ExecutorChoice, ValidationError.ValidationError> => {
    const given = Object.entries(slurm).filter(([, v]) => Option.isSome(v)).map(([k]) => `--${k}`)
    if (executor !== "slurm") {
      return given.length === 0
        ? Effect.succeed({ _tag: executor })
        : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`${given.join(", ")} ${given.length === 1 ? "applies" : "apply"} only with --executor slurm`)))
    }
    return Effect.succeed({
      _tag: "slurm",
      ...Option.match(slurm.partition, { onNone: () => ({}), onSome: (partition) => ({ partition }) }),
      ...Option.match(slurm.account, { onNone: () => ({}), onSome: (account) => ({ account }) }),
      ...Option.match(slurm.ssh, { onNone: () => ({}), onSome: (ssh) => ({ ssh }) })
    })
  })
)

const summary = (outcomes: ReadonlyArray<StepOutcome>): string => {
  const count = (status: StepOutcome["status"]) => outcomes.filter((o) => o.status === status).length
  return `${count("ran")} ran, ${count("cached")} cached, ${count("failed")} failed, ${count("blocked")} blocked` +
    (count("not selected") > 0 ? `, ${count("not selected")} not selected` : "")
}

/**
 * Steps at once when `--concurrency` is not given: the study's `concurrency`; for child processes, which use one
 * core each on the tfjs engine, the machine's cores when the study leaves it at 1.
 */
const defaultConcurrency = (loaded: LoadedDeclaration, executor: ExecutorChoice): number => {
  const declared = loaded.declaration.kind === "study" ? loaded.declaration.concurrency : 1
  return executor._tag === "processes" && declared === 1 ? availableParallelism() : declared
}

/** What `executePlan` runs, and where. */
export interface PlanExecution {
  readonly loaded: LoadedDeclaration
  readonly plan: Plan
  readonly cacheDir: string
  /** Step ids or kinds to run with their inputs; every step when empty. */
  readonly only: ReadonlyArray<string>
  readonly force: ReadonlySet<string>
  /**
   * Whether the forced steps' experiments get new MLflow runs (`sardine run --force`: another result than the
   * run holds); a repair, which computes again what the run holds, logs to the same runs.
   */
  readonly forceNewRuns: boolean
  readonly concurrency: Option.Option<number>
  readonly trackingUri: Option.Option<string>
  /** Go on when the tracking server cannot be reached at start, with tracking spooled. */
  readonly trackingOptional: boolean
  readonly executor: ExecutorChoice
  readonly lockLease: Duration.Duration
  /** The engine the plan was compiled for. */
  readonly engine: EngineName
}

/**
 * Runs the selected steps of a plan with its MLflow runs, prints the summary, and fails naming
 * every step that failed or was blocked: `sardine run` after its checks, and `verify --repair`.
 */
export const executePlan = (
  { cacheDir, concurrency, engine, executor, force, forceNewRuns, lockLease, loaded, only, plan, trackingOptional, trackingUri }: PlanExecution
) =>
  Effect.gen(function*() {
    const selected = selectSteps(plan, only)
    const implementations = yield* StepImplementations
    const steps = yield* (yield* ExecutorFactory).open(executor)
    let outcome: Exit.Exit<ReadonlyArray<StepOutcome>, unknown> = Exit.interrupt(FiberId.none)
    const tracking = yield* openTracking({
      loaded,
      plan,
      cacheDir,
      uri: Option.getOrUndefined(trackingUri),
      backend: yield* implementations.backend(enginesOf(plan)),
      outcome: () => outcome,
      optional: trackingOptional,
      ...(forceNewRuns ? { forced: force } : {})
    })
    const outcomes = yield* steps.execute({
      loaded,
      plan,
      cacheDir,
      only,
      concurrency: Option.getOrElse(concurrency, () => defaultConcurrency(loaded, executor)),
      trackingUri: tracking.target,
      tracking: tracking.forStep,
      force,
      lockLease,
      engine
    }).pipe(Effect.onExit((exit) => Effect.sync(() => (outcome = exit))))
    yield* Console.log(`${plan.name}: ${summary(outcomes)} (cache: ${cacheDir})`)
    const bad = outcomes.filter((o) => o.status === "failed" || o.status === "blocked")
    if (bad.length > 0) {
      return yield* Effect.fail(new RunFailed({ failed: bad.map((o) => `${o.step.id}: ${o.status} — ${o.detail ?? ""}`) }))
    }
    // Where to look next: the report (when this run reached it) and the runs.
    const reportStep = plan.steps.find((s) => s.kind === "report" && selected.has(s.id))
    if (reportStep !== undefined) {
      const file = join(cacheLayout(cacheDir).done(reportStep.key), "report.html")
      const shown = relative(process.cwd(), file)
      yield* Console.log(`report: ${shown.startsWith("..") ? file : shown}`)
    }
    yield* Console.log(`runs: ${tracking.target}`)
  }).pipe(Effect.scoped)

/** Why a step will run: never run, damaged, or forced. */
const reasonOf = (state: OutputState | undefined, forced: boolean) =>
  forced ? "forced" : state?._tag === "damaged" ? `damaged: ${state.problems.join("; ")}` : ""

export const runCommand = Command.make(
  "run",
  {
    file: declarationFile,
    cacheDir: cacheDirOption,
    only,
    force,
    dryRun,
    concurrency,
    trackingUri: trackingUriOption,
    trackingOptional: trackingOptionalOption,
    executor: executorChoice,
    lockLease: lockLeaseOption,
    engine: engineOption
  },
  ({ cacheDir, concurrency, dryRun, engine, executor, file, force, lockLease, only, trackingOptional, trackingUri }) =>
    Effect.gen(function*() {
      const { engine: chosen, loaded, notes, plan } = yield* loadPlan(file, { engine, check: true, cacheDir, remember: !dryRun })
      yield* checkAgainstArchitecture(loaded, file)
      yield* checkGpuMemory(loaded, plan)
      for (const note of notes) yield* Console.log(`note: ${note}`)
      const onlySteps = stepList(only)
      const forceSteps = stepList(force)
      const unknown = [
        ...unknownSteps(plan, onlySteps).map((o) => `--only ${o}: no step has this id or kind`),
        ...unknownSteps(plan, forceSteps, true).map((o) => `--force ${o}: no step has this id or kind (or use --force all)`)
      ]
      if (unknown.length > 0) return yield* Effect.fail(new RunFailed({ failed: unknown }))
      const selected = selectSteps(plan, onlySteps)
      const forced = new Set([...designatedSteps(plan, forceSteps)].filter((id) => selected.has(id)))
      const states = yield* outputStates(plan, cacheDir)
      const toRun = plan.steps.filter((s) => selected.has(s.id) && (states.get(s.id)?._tag !== "done" || forced.has(s.id)))
      yield* checkDeclaredFolders(toRun, (path) => resolve(loaded.directory, path))
      // Only SLURM allocates several nodes; the local executor would train on this machine's processes alone.
      const multiNode = executor._tag !== "slurm"
        ? toRun.flatMap((s) => {
          const nodes = stepResources(loaded.declaration, s).nodes ?? 1
          return nodes > 1
            ? [`${s.id}: resources.${s.kind}.nodes is ${nodes}; the ${executor._tag} executor runs on this machine only: run it with --executor slurm`]
            : []
        })
        : []
      if (multiNode.length > 0) return yield* Effect.fail(new RunFailed({ failed: multiNode }))
      if (dryRun) {
        yield* Console.log(toRun.length === 0 ? "nothing to run: every selected step is cached" : "would run:")
        for (const s of toRun) {
          const reason = reasonOf(states.get(s.id), forced.has(s.id))
          yield* Console.log(`  ${s.kind.padEnd(14)} ${s.id}  ${s.key}${reason === "" ? "" : `  (${reason})`}`)
        }
        return
      }
      yield* executePlan({
        loaded,
        plan,
        cacheDir,
        only: onlySteps,
        force: forced,
        forceNewRuns: true,
        concurrency,
        trackingUri,
        trackingOptional,
        executor,
        lockLease,
        engine: chosen
      })
    })
).pipe(
  Command.withDescription(
    "Run every step of a declaration that is not cached yet; interrupted trainings resume from their last checkpoint. " +
      "A step's key covers the declared folders it reads (data, base model, CLIP: file names, sizes and modification times, " +
      "or contents with `fingerprint: \"content\"`), so editing one in place runs its steps again. " +
      "A cached output whose files changed size is run again. Ctrl-C or SIGTERM stops cleanly (exit 130 / 143). " +
      "Runs are tracked in MLflow: a parent run per study, a child run per experiment."
  )
)
