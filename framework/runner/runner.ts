import { Cause, Deferred, Effect, Exit, Option } from "effect"
import { isAbsolute, resolve } from "node:path"
import type { Plan, Step } from "../plan/step.ts"
import { cacheLayout, commit, isDone, openWorkDir, type CacheLayout } from "./cache.ts"
import { holdLock } from "./lock.ts"
import { Progress } from "./progress.ts"
import type { StepContext, StepHandlers } from "./step-handler.ts"
import type { StepTracking } from "./tracking.ts"

export type StepStatus = "cached" | "ran" | "failed" | "blocked" | "not selected"

export interface StepOutcome {
  readonly step: Step
  readonly status: StepStatus
  readonly durationMs: number
  /** Why it failed, or which input blocked it. */
  readonly detail?: string
}

export interface RunOptions {
  readonly cacheDir: string
  /** Folder of the declaration file; relative paths in the declaration are resolved against it. */
  readonly declarationDir: string
  /** Step ids or kinds to run (with the inputs they need); everything when absent. */
  readonly only?: ReadonlyArray<string>
  readonly concurrency: number
  /** Where each step logs (its experiments' MLflow runs). */
  readonly tracking: (step: Step) => StepTracking
}

/** The steps to run: those matching `only`, and every step they depend on. */
export const selectSteps = (plan: Plan, only: ReadonlyArray<string> | undefined): ReadonlySet<string> => {
  if (only === undefined || only.length === 0) return new Set(plan.steps.map((s) => s.id))
  const byId = new Map(plan.steps.map((s) => [s.id, s]))
  const selected = new Set<string>()
  const visit = (id: string) => {
    if (selected.has(id)) return
    selected.add(id)
    for (const input of byId.get(id)?.inputs ?? []) visit(input.step)
  }
  for (const step of plan.steps) if (only.includes(step.id) || only.includes(step.kind)) visit(step.id)
  return selected
}

/** Which steps already have a finished output in the cache. */
export const cachedSteps = (plan: Plan, cacheDir: string): Effect.Effect<ReadonlySet<string>> =>
  Effect.gen(function*() {
    const cache = cacheLayout(cacheDir)
    const done = yield* Effect.forEach(plan.steps, (s) => isDone(cache, s.key), { concurrency: 16 })
    return new Set(plan.steps.filter((_, i) => done[i]).map((s) => s.id))
  })

const labelOf = (step: Step) =>
  `${step.kind.padEnd(14)} ${step.id}${step.experiments.length > 1 ? `  (shared by ${step.experiments.length})` : ""}`

const contextFor = (
  plan: Plan,
  step: Step,
  cache: CacheLayout,
  workDir: string,
  resumed: boolean,
  declarationDir: string,
  meter: { update: StepContext["progress"]; log: StepContext["log"] },
  tracking: StepTracking
): StepContext => {
  const byId = new Map(plan.steps.map((s) => [s.id, s]))
  const inputs = (role: string) =>
    step.inputs.filter((i) => i.role === role).map((i) => {
      const input = byId.get(i.step)!
      return { step: input, dir: cache.done(input.key) }
    })
  return {
    step,
    plan,
    workDir,
    resumed,
    resolvePath: (path) => (isAbsolute(path) ? path : resolve(declarationDir, path)),
    inputs,
    input: (role) => {
      const found = inputs(role)
      if (found.length !== 1) throw new Error(`step ${step.id} has ${found.length} inputs with role "${role}"`)
      return found[0]
    },
    progress: meter.update,
    log: meter.log,
    tracking
  } as StepContext
}

const failureText = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  const error = Option.isSome(failure) ? failure.value : Cause.squash(cause)
  if (error instanceof Error) return error.message
  return typeof error === "string" ? error : JSON.stringify(error)
}

/** Where one step runs and logs: the parts of `RunOptions` a single step needs. */
export type StepRunOptions = Pick<RunOptions, "cacheDir" | "declarationDir" | "tracking">

/**
 * Runs one step in this process unless its output is cached: takes the step's lock, runs the
 * handler in the step's work folder (resuming what an interrupted run left there) and commits the
 * output with its manifest. Its inputs must already be in the cache.
 */
export const executeStep = <R>(plan: Plan, step: Step, handlers: StepHandlers<R>, options: StepRunOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const progress = yield* Progress
    const cache = cacheLayout(options.cacheDir)
    yield* holdLock(cache.lock(step.key), (owner) => progress.note(`waiting for ${step.id}: locked by ${owner}`))
    if (yield* isDone(cache, step.key)) return "cached" as const
    const { dir, resumed } = yield* openWorkDir(cache, step.key)
    const meter = yield* progress.begin(step.id, labelOf(step))
    if (resumed) yield* meter.log("resuming from the work folder of an interrupted run")
    const startedAt = new Date()
    const context = contextFor(plan, step, cache, dir, resumed, options.declarationDir, meter, options.tracking(step))
    const handler = handlers[step.kind] as (c: StepContext) => Effect.Effect<void, unknown, R>
    yield* Effect.suspend(() => handler(context)).pipe(
      Effect.onExit((exit) =>
        Exit.isSuccess(exit) ? Effect.void : progress.end(step.id, Cause.isInterruptedOnly(exit.cause) ? "killed" : "failed")
      )
    )
    const finishedAt = new Date()
    yield* commit(cache, {
      id: step.id,
      kind: step.kind,
      key: step.key,
      experiments: step.experiments,
      inputs: step.inputs.map((i) => ({ role: i.role, key: plan.steps.find((s) => s.id === i.step)!.key })),
      config: step.config,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      durationMs: finishedAt.getTime() - startedAt.getTime()
    })
    yield* progress.end(step.id, "done")
    return "ran" as const
  }))

/**
 * Runs a plan: every selected step whose output is not cached, each once its inputs are done,
 * at most `concurrency` at a time. A failed step blocks only the steps that need it; the others
 * go on and their outputs are kept. Interruption (Ctrl-C) releases the locks and leaves the work
 * folders for the next run to resume.
 */
export const runPlan = <R>(plan: Plan, handlers: StepHandlers<R>, options: RunOptions) =>
  Effect.gen(function*() {
    const cache = cacheLayout(options.cacheDir)
    const selected = selectSteps(plan, options.only)
    const semaphore = yield* Effect.makeSemaphore(options.concurrency)
    const finished = new Map<string, Deferred.Deferred<StepOutcome>>()
    for (const step of plan.steps) finished.set(step.id, yield* Deferred.make<StepOutcome>())

    const runOne = (step: Step) =>
      Effect.gen(function*() {
        const started = Date.now()
        const settle = (status: StepStatus, detail?: string) =>
          Deferred.succeed(finished.get(step.id)!, { step, status, durationMs: Date.now() - started, detail })
        if (!selected.has(step.id)) return yield* settle("not selected")
        const inputs = yield* Effect.forEach(step.inputs, (i) => Deferred.await(finished.get(i.step)!))
        const blocker = inputs.find((o) => o.status === "failed" || o.status === "blocked" || o.status === "not selected")
        if (blocker !== undefined) return yield* settle("blocked", `needs ${blocker.step.id} (${blocker.status})`)
        if (yield* isDone(cache, step.key)) return yield* settle("cached")
        const exit = yield* Effect.exit(semaphore.withPermits(1)(executeStep(plan, step, handlers, options)))
        if (Exit.isSuccess(exit)) return yield* settle(exit.value)
        if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.failCause(exit.cause)
        return yield* settle("failed", failureText(exit.cause))
      })

    yield* Effect.forEach(plan.steps, runOne, { concurrency: "unbounded", discard: true })
    return yield* Effect.forEach(plan.steps, (s) => Deferred.await(finished.get(s.id)!))
  })
