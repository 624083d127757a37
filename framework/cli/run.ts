import { Command, Options } from "@effect/cli"
import { Console, Effect, Exit, FiberId, Option, Schema } from "effect"
import { resolve } from "node:path"
import { loadDeclaration } from "../declaration/load.ts"
import { compilePlan } from "../plan/compile.ts"
import { cachedSteps, runPlan, selectSteps, type StepOutcome } from "../runner/runner.ts"
import { StepImplementations } from "../runner/step-implementations.ts"
import { openRuns, stepTracking } from "../runner/tracking.ts"
import { Tracker, TrackerFactory } from "../services/tracker.ts"
import { checkDeclaredFolders } from "../runner/preflight.ts"
import { cacheDirOption } from "./cache-dir.ts"
import { declarationFile } from "./declaration-file.ts"

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
const dryRun = Options.boolean("dry-run").pipe(Options.withDescription("Print what would run, run nothing"))
const trackingUri = Options.text("tracking-uri").pipe(
  Options.optional,
  Options.withDescription("MLflow server (http[s]://…) or local folder for the runs (default: MLFLOW_TRACKING_URI, else ./mlruns)")
)
const concurrency = Options.integer("concurrency").pipe(
  Options.optional,
  Options.withDescription("Steps run at once (default: the study's `concurrency`, else 1)")
)

const summary = (outcomes: ReadonlyArray<StepOutcome>): string => {
  const count = (status: StepOutcome["status"]) => outcomes.filter((o) => o.status === status).length
  return `${count("ran")} ran, ${count("cached")} cached, ${count("failed")} failed, ${count("blocked")} blocked` +
    (count("not selected") > 0 ? `, ${count("not selected")} not selected` : "")
}

export const runCommand = Command.make(
  "run",
  { file: declarationFile, cacheDir: cacheDirOption, only, dryRun, concurrency, trackingUri },
  ({ cacheDir, concurrency, dryRun, file, only, trackingUri }) =>
    Effect.gen(function*() {
      const loaded = yield* loadDeclaration(file)
      const plan = compilePlan(loaded.declaration)
      const onlySteps = only.flatMap((o) => o.split(",")).map((o) => o.trim()).filter((o) => o.length > 0)
      const unknown = onlySteps.filter((o) => !plan.steps.some((s) => s.id === o || s.kind === o))
      if (unknown.length > 0) {
        return yield* Effect.fail(new RunFailed({ failed: unknown.map((o) => `--only ${o}: no step has this id or kind`) }))
      }
      const selected = selectSteps(plan, onlySteps)
      const cached = yield* cachedSteps(plan, cacheDir)
      const toRun = plan.steps.filter((s) => selected.has(s.id) && !cached.has(s.id))
      yield* checkDeclaredFolders(toRun, (path) => resolve(loaded.directory, path))
      if (dryRun) {
        yield* Console.log(toRun.length === 0 ? "nothing to run: every selected step is cached" : "would run:")
        for (const s of toRun) yield* Console.log(`  ${s.kind.padEnd(14)} ${s.id}  ${s.key}`)
        return
      }
      const implementations = yield* StepImplementations
      const tracker = yield* (yield* TrackerFactory).open(Option.getOrUndefined(trackingUri))
      let outcome: Exit.Exit<ReadonlyArray<StepOutcome>, unknown> = Exit.interrupt(FiberId.none)
      const runs = yield* openRuns(loaded, plan, () => outcome, yield* implementations.backend).pipe(
        Effect.provideService(Tracker, tracker)
      )
      const outcomes = yield* runPlan(plan, implementations.handlers, {
        cacheDir,
        declarationDir: loaded.directory,
        only: onlySteps,
        concurrency: Option.getOrElse(concurrency, () => loaded.declaration.kind === "study" ? loaded.declaration.concurrency : 1),
        tracking: (step) => stepTracking(tracker, runs, step)
      }).pipe(Effect.onExit((exit) => Effect.sync(() => (outcome = exit))))
      yield* Console.log(`${plan.name}: ${summary(outcomes)} (cache: ${cacheDir})`)
      const bad = outcomes.filter((o) => o.status === "failed" || o.status === "blocked")
      if (bad.length > 0) {
        return yield* Effect.fail(new RunFailed({ failed: bad.map((o) => `${o.step.id}: ${o.status} — ${o.detail ?? ""}`) }))
      }
    }).pipe(Effect.scoped)
).pipe(
  Command.withDescription(
    "Run every step of a declaration that is not cached yet; interrupted steps resume. Runs are tracked in MLflow: a parent run per study, a child run per experiment."
  )
)
