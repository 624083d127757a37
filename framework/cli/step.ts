import { Args, Command, Options } from "@effect/cli"
import { Console, type Duration, Effect, Exit, FiberId, Option, Schema } from "effect"
import { resolve } from "node:path"
import { stepResources } from "../plan/step-resources.ts"
import { enginesOf, type Plan, type Step } from "../plan/step.ts"
import type { LoadedDeclaration } from "../declaration/load.ts"
import { cacheLayout } from "../runner/cache.ts"
import { checkDeclaredFolders } from "../runner/preflight.ts"
import { checkInputs, executeStep, type StepOutcome } from "../runner/runner.ts"
import { StepImplementations } from "../runner/step-implementations.ts"
import { openTracking } from "../runner/tracking.ts"
import { cacheDirOption } from "./cache-dir.ts"
import { declarationFile } from "./declaration-file.ts"
import { loadPlan } from "./declaration-plan.ts"
import { engineOption } from "./engine-option.ts"
import { trackingUriOption } from "./run.ts"
import { lockLeaseOption } from "./step-options.ts"

export class StepNotRunnable extends Schema.TaggedError<StepNotRunnable>()("StepNotRunnable", {
  step: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.step}: ${this.reason}`
  }
}

const stepId = Args.text({ name: "step-id" }).pipe(Args.withDescription("The step to run, by its id in `sardine plan`"))

const force = Options.boolean("force").pipe(Options.withDescription("Run the step again from scratch even when it is cached"))

/** What `runServedStep` needs besides the step: where the cache and the runs are, and how it runs. */
export interface ServedStepOptions {
  readonly cacheDir: string
  readonly trackingUri: Option.Option<string>
  readonly force: boolean
  readonly lockLease: Duration.Duration
}

/** The step of the plan with this id, or a refusal that lists the plan's steps. */
export const planStep = (plan: Plan, stepId: string) => {
  const step = plan.steps.find((s) => s.id === stepId)
  return step !== undefined ? Effect.succeed(step) : Effect.fail(
    new StepNotRunnable({ step: stepId, reason: `no such step in ${plan.name}; its steps are ${plan.steps.map((s) => s.id).join(", ")}` })
  )
}

/**
 * Runs one step of a plan in this process exactly as `sardine run` runs it (lock, work folder, commit, the
 * MLflow runs of its experiments), its inputs already in the cache: what `sardine step` and each request
 * to `sardine step-worker` do.
 */
export const runServedStep = (loaded: LoadedDeclaration, plan: Plan, step: Step, { cacheDir, force, lockLease, trackingUri }: ServedStepOptions) =>
  Effect.gen(function*() {
    yield* checkInputs(plan, step, cacheLayout(cacheDir))
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
      backend: yield* implementations.backend(enginesOf(plan)),
      outcome: () => outcome,
      optional: true,
      served: step
    })
    const started = Date.now()
    return yield* executeStep(plan, step, implementations.handlers, {
      cacheDir,
      declarationDir: loaded.directory,
      tracking: tracking.forStep,
      resources: (step) => stepResources(loaded.declaration, step),
      force: new Set(force ? [step.id] : []),
      lockLease
    }).pipe(
      Effect.onExit((exit) =>
        Effect.sync(() => (outcome = Exit.map(exit, (status): ReadonlyArray<StepOutcome> => [{ step, status, durationMs: Date.now() - started }])))
      )
    )
  }).pipe(Effect.scoped)

/**
 * `sardine step`: one step of a plan, in this process, exactly as `sardine run` runs it (lock,
 * work folder, commit, MLflow runs of its experiments). Its inputs must be in the cache. This is
 * what a SLURM job of `sardine run --executor slurm` executes.
 */
export const stepCommand = Command.make(
  "step",
  { file: declarationFile, stepId, cacheDir: cacheDirOption, trackingUri: trackingUriOption, force, lockLease: lockLeaseOption, engine: engineOption },
  ({ cacheDir, engine, file, force, lockLease, stepId, trackingUri }) =>
    Effect.gen(function*() {
      const { loaded, plan } = yield* loadPlan(file, { engine, check: true, cacheDir, remember: true })
      const step = yield* planStep(plan, stepId)
      const status = yield* runServedStep(loaded, plan, step, { cacheDir, trackingUri, force, lockLease })
      yield* Console.log(`${step.id}: ${status} (cache: ${cacheDir})`)
    })
).pipe(
  Command.withDescription(
    "Run one step of a declaration in this process (its inputs must be cached), with the same cache, locks and MLflow runs as `sardine run`."
  )
)
