import { Cause, Deferred, type Duration, Effect, Exit, Option } from "effect"
import type { FileSystem } from "@effect/platform"
import { isAbsolute, resolve } from "node:path"
import { defaultStepResources, type StepResources } from "../declaration/resources.ts"
import type { Plan, Step } from "../plan/step.ts"
import { cacheLayout, commit, openWorkDir, outputState, removeWorkDir, type CacheLayout, type OutputState } from "./cache.ts"
import { defaultLockLease, holdLock } from "./lock.ts"
import { Progress } from "./progress.ts"
import { resumableKinds } from "./resume-point.ts"
import { type StepContext, type StepError, StepFailed, type StepHandlers } from "./step-handler.ts"
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
  /** What each step may use (the declaration's `resources`); the built-in defaults when absent. */
  readonly resources?: (step: Step) => StepResources
  /** Steps run again from scratch even when their output is cached (`--force`). */
  readonly force?: ReadonlySet<string>
  /** How long another host waits for a silent lock of this process before taking it over (default: lock.ts). */
  readonly lockLease?: Duration.Duration
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

/** What the cache holds of each step's output, by step id (file sizes checked against the manifests). */
export const outputStates = (plan: Plan, cacheDir: string): Effect.Effect<ReadonlyMap<string, OutputState>, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const cache = cacheLayout(cacheDir)
    const states = yield* Effect.forEach(plan.steps, (s) => Effect.map(outputState(cache, s.key), (state) => [s.id, state] as const), { concurrency: 16 })
    return new Map(states)
  })

/** Which steps already have a finished, undamaged output in the cache. */
export const cachedSteps = (plan: Plan, cacheDir: string): Effect.Effect<ReadonlySet<string>, never, FileSystem.FileSystem> =>
  Effect.map(outputStates(plan, cacheDir), (states) => new Set([...states].filter(([, s]) => s._tag === "done").map(([id]) => id)))

/** One line naming what is wrong with a damaged output. */
export const damageText = (state: Extract<OutputState, { _tag: "damaged" }>) => state.problems.join("; ")

/** How a step is named in progress lines: its kind, id, and how many experiments share it. */
export const stepLabel = (step: Step) => `${step.kind.padEnd(14)} ${step.id}${step.experiments.length > 1 ? `  (shared by ${step.experiments.length})` : ""}`

const contextFor = (
  plan: Plan,
  step: Step,
  cache: CacheLayout,
  workDir: string,
  resumed: boolean,
  declarationDir: string,
  meter: { update: StepContext["progress"]; log: StepContext["log"] },
  tracking: StepTracking,
  resources: StepResources
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
    tracking,
    resources
  } as StepContext
}

const failureText = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  const error = Option.isSome(failure) ? failure.value : Cause.squash(cause)
  if (error instanceof Error) return error.message
  return typeof error === "string" ? error : JSON.stringify(error)
}

/** Where one step runs and logs: the parts of `RunOptions` a single step needs. */
export type StepRunOptions = Pick<RunOptions, "cacheDir" | "declarationDir" | "tracking" | "resources" | "force" | "lockLease">

/** An input of the step is not usable: absent from the cache, or damaged since it was committed. */
export const checkInputs = (plan: Plan, step: Step, cache: CacheLayout) =>
  Effect.forEach(step.inputs, (input) =>
    Effect.gen(function*() {
      const needed = plan.steps.find((s) => s.id === input.step)!
      const state = yield* outputState(cache, needed.key)
      if (state._tag === "done") return
      return yield* new StepFailed({
        step: step.id,
        reason: state._tag === "missing"
          ? `its input ${needed.id} (${input.role}) is not in the cache (${cache.done(needed.key)}); run it first`
          : `its input ${needed.id} (${input.role}) is damaged: ${damageText(state)}; \`sardine run\` runs it again`
      })
    }), { discard: true })

/**
 * Runs one step in this process unless its output is cached: takes the step's lock, checks its
 * inputs' outputs, runs the handler in the step's work folder (a training resumes what an
 * interrupted run left there) and commits the output with its manifest. A forced step runs from
 * scratch even when cached.
 */
export const executeStep = <R>(plan: Plan, step: Step, handlers: StepHandlers<R>, options: StepRunOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const progress = yield* Progress
    const cache = cacheLayout(options.cacheDir)
    const forced = options.force?.has(step.id) === true
    yield* holdLock(cache.lock(step.key), options.lockLease ?? defaultLockLease, {
      onWait: (owner) => progress.note(`waiting for ${step.id}: locked by ${owner}`),
      onTakeOver: progress.note
    })
    if (!forced && (yield* outputState(cache, step.key))._tag === "done") return "cached" as const
    yield* checkInputs(plan, step, cache)
    const resumable = resumableKinds.has(step.kind) && !forced
    const { dir, resumed } = yield* openWorkDir(cache, step.key, resumable)
    const meter = yield* progress.begin(step.id, stepLabel(step))
    if (resumed) yield* meter.log("resuming from the work folder of an interrupted run")
    const startedAt = new Date()
    const context = contextFor(
      plan,
      step,
      cache,
      dir,
      resumed,
      options.declarationDir,
      meter,
      options.tracking(step),
      options.resources?.(step) ?? defaultStepResources
    )
    const handler = handlers[step.kind] as (c: StepContext) => Effect.Effect<void, StepError, R>
    yield* Effect.suspend(() => handler(context)).pipe(
      Effect.onExit((exit) =>
        Exit.isSuccess(exit)
          ? Effect.void
          : Effect.zipRight(
            progress.end(step.id, Cause.isInterruptedOnly(exit.cause) ? "killed" : "failed"),
            resumableKinds.has(step.kind) ? Effect.void : removeWorkDir(cache, step.key)
          )
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

/** How one step runs once its inputs are done: in this process (executeStep) or elsewhere (a child process). */
export type StepExecution<E, R> = (step: Step) => Effect.Effect<"ran" | "cached", E, R>

/**
 * Runs a plan: every selected step whose output is not cached, each once its inputs are done,
 * at most `concurrency` at a time, each by `execution`. A failed step blocks only the steps that
 * need it; the others go on and their outputs are kept. Interruption (Ctrl-C) stops the running
 * ones (locks released, work folders left for the next run to resume).
 */
export const scheduleSteps = <E, R>(plan: Plan, execution: StepExecution<E, R>, options: Pick<RunOptions, "cacheDir" | "only" | "concurrency" | "force">) =>
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
          Deferred.succeed(finished.get(step.id)!, { step, status, durationMs: Date.now() - started, ...(detail === undefined ? {} : { detail }) })
        if (!selected.has(step.id)) return yield* settle("not selected")
        const inputs = yield* Effect.forEach(step.inputs, (i) => Deferred.await(finished.get(i.step)!))
        const blocker = inputs.find((o) => o.status === "failed" || o.status === "blocked" || o.status === "not selected")
        if (blocker !== undefined) return yield* settle("blocked", `needs ${blocker.step.id} (${blocker.status})`)
        const state = yield* outputState(cache, step.key)
        if (state._tag === "done" && options.force?.has(step.id) !== true) return yield* settle("cached")
        if (state._tag === "damaged") yield* (yield* Progress).note(`${step.id}: its output is damaged (${damageText(state)}); running it again`)
        const exit = yield* Effect.exit(semaphore.withPermits(1)(execution(step)))
        if (Exit.isSuccess(exit)) return yield* settle(exit.value)
        if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
        return yield* settle("failed", failureText(exit.cause))
      })

    yield* Effect.forEach(plan.steps, runOne, { concurrency: "unbounded", discard: true })
    return yield* Effect.forEach(plan.steps, (s) => Deferred.await(finished.get(s.id)!))
  })

/** Runs a plan with every step in this process (see scheduleSteps). */
export const runPlan = <R>(plan: Plan, handlers: StepHandlers<R>, options: RunOptions) =>
  scheduleSteps(plan, (step) => executeStep(plan, step, handlers, options), options)
