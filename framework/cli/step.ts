import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Exit, FiberId, Option, Schema } from "effect"
import { resolve } from "node:path"
import { loadDeclaration } from "../declaration/load.ts"
import { compilePlan } from "../plan/compile.ts"
import { cacheLayout, isDone } from "../runner/cache.ts"
import { checkDeclaredFolders } from "../runner/preflight.ts"
import { executeStep, type StepOutcome } from "../runner/runner.ts"
import { StepImplementations } from "../runner/step-implementations.ts"
import { openTracking } from "../runner/tracking.ts"
import { cacheDirOption } from "./cache-dir.ts"
import { declarationFile } from "./declaration-file.ts"

export class StepNotRunnable extends Schema.TaggedError<StepNotRunnable>()("StepNotRunnable", {
  step: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.step}: ${this.reason}`
  }
}

const stepId = Args.text({ name: "step-id" }).pipe(Args.withDescription("The step to run, by its id in `sardine plan`"))
const trackingUri = Options.text("tracking-uri").pipe(
  Options.optional,
  Options.withDescription("MLflow server (http[s]://…) or local folder for the runs (default: MLFLOW_TRACKING_URI, else ./mlruns)")
)

/**
 * `sardine step`: one step of a plan, in this process, exactly as `sardine run` runs it (lock,
 * work folder, commit, MLflow runs of its experiments). Its inputs must be in the cache. This is
 * what a SLURM job of `sardine run --executor slurm` executes.
 */
export const stepCommand = Command.make(
  "step",
  { file: declarationFile, stepId, cacheDir: cacheDirOption, trackingUri },
  ({ cacheDir, file, stepId, trackingUri }) =>
    Effect.gen(function*() {
      const loaded = yield* loadDeclaration(file)
      const plan = compilePlan(loaded.declaration)
      const step = plan.steps.find((s) => s.id === stepId)
      if (step === undefined) {
        return yield* Effect.fail(new StepNotRunnable({
          step: stepId,
          reason: `no such step in ${plan.name}; its steps are ${plan.steps.map((s) => s.id).join(", ")}`
        }))
      }
      const cache = cacheLayout(cacheDir)
      for (const input of step.inputs) {
        const needed = plan.steps.find((s) => s.id === input.step)!
        if (!(yield* isDone(cache, needed.key))) {
          return yield* Effect.fail(new StepNotRunnable({
            step: step.id,
            reason: `its input ${needed.id} (${input.role}) is not in the cache (${cache.done(needed.key)}); run it first`
          }))
        }
      }
      yield* checkDeclaredFolders([step], (path) => resolve(loaded.directory, path))

      const implementations = yield* StepImplementations
      let outcome: Exit.Exit<ReadonlyArray<StepOutcome>, unknown> = Exit.interrupt(FiberId.none)
      // The runs are found again by their content keys and the cache: the ones `sardine run` opened for the
      // whole plan. A job does not wait for the server (`sardine run` did at start): its tracking is spooled.
      const tracking = yield* openTracking({
        loaded,
        plan,
        cacheDir,
        uri: Option.getOrUndefined(trackingUri),
        backend: yield* implementations.backend,
        outcome: () => outcome,
        optional: true
      })
      const started = Date.now()
      const status = yield* executeStep(plan, step, implementations.handlers, {
        cacheDir,
        declarationDir: loaded.directory,
        tracking: tracking.forStep
      }).pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => (outcome = Exit.map(exit, (status): ReadonlyArray<StepOutcome> => [{ step, status, durationMs: Date.now() - started }])))
        )
      )
      yield* Console.log(`${step.id}: ${status} (cache: ${cacheDir})`)
    }).pipe(Effect.scoped)
).pipe(
  Command.withDescription(
    "Run one step of a declaration in this process (its inputs must be cached), with the same cache, locks and MLflow runs as `sardine run`."
  )
)
