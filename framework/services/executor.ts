import type { FileSystem } from "@effect/platform"
import { Context, Duration, Effect, Schema } from "effect"
import type { LoadedDeclaration } from "../declaration/load.ts"
import { stepResources } from "../plan/step-resources.ts"
import type { Plan, Step } from "../plan/step.ts"
import type { Progress } from "../runner/progress.ts"
import { type RunOptions, runPlan, type StepOutcome } from "../runner/runner.ts"
import { StepImplementations } from "../runner/step-implementations.ts"
import type { StepTracking } from "../runner/tracking.ts"
import type { EngineName } from "./engine.ts"

/** Everything an executor needs to run the selected steps of a plan. */
export interface ExecutionRequest {
  readonly loaded: LoadedDeclaration
  readonly plan: Plan
  readonly cacheDir: string
  /** Step ids or kinds to run (with the inputs they need); everything when empty. */
  readonly only: ReadonlyArray<string>
  /** Steps run at once on this machine (the local and child-process executors; a cluster's scheduler decides for itself). */
  readonly concurrency: number
  /** Where the steps log, as a tracking URI another process (a batch job) can open. */
  readonly trackingUri: string
  /** Where each step logs when it runs in this process. */
  readonly tracking: (step: Step) => StepTracking
  /** The engine the plan was compiled for (a batch job compiles it again with the same one). */
  readonly engine?: EngineName
  /** Step ids run again from scratch even when cached (`--force`). */
  readonly force: ReadonlySet<string>
  /** The lease of the step locks this run takes (see runner/lock.ts). */
  readonly lockLease: Duration.Duration
}

/** The executor could not do its job: a scheduler refused or is unreachable, the cache is not shared, … */
export class ExecutorError extends Schema.TaggedError<ExecutorError>()("ExecutorError", {
  executor: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.executor} executor: ${this.reason}`
  }
}

/** The batch job a step last ran as, and its state when asked. */
export interface StepJob {
  readonly jobId: string
  /** The scheduler's word: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, …; ENDED for a job it no longer holds and has no record of (no accounting). */
  readonly state: string
  readonly submittedAt: string
  /** The job's output file. */
  readonly log: string
  /** What the job was submitted with, when its record says. */
  readonly allocation?: JobAllocation
}

/**
 * What a job asked for: GPUs, CPUs and memory (the cluster's default when absent); for a train step on several
 * processes, its nodes and tasks (one per process) on each, with GPUs and memory per node and CPUs per task.
 */
export const JobAllocation = Schema.Struct({
  gpus: Schema.Number,
  cpus: Schema.Number,
  memory: Schema.optionalWith(Schema.String, { exact: true }),
  nodes: Schema.optionalWith(Schema.Number, { exact: true }),
  tasksPerNode: Schema.optionalWith(Schema.Number, { exact: true })
})
export type JobAllocation = typeof JobAllocation.Type

const counted = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`

/** "2 GPUs, 8 CPUs, 64G", "no GPU, 1 CPU"; "2 nodes × 4 tasks × 1 GPU (8 GPUs), 6 CPUs a task, 400G a node". */
export const describeAllocation = (a: JobAllocation): string => {
  if (a.nodes === undefined || a.tasksPerNode === undefined) {
    return [a.gpus === 0 ? "no GPU" : counted(a.gpus, "GPU"), counted(a.cpus, "CPU"), ...(a.memory === undefined ? [] : [a.memory])].join(", ")
  }
  const shape = `${counted(a.nodes, "node")} × ${counted(a.tasksPerNode, "task")}`
  const total = `(${counted(a.gpus * a.nodes, "GPU")})`
  const gpus = a.gpus === 0
    ? `${shape}, no GPU`
    : a.gpus % a.tasksPerNode === 0
    ? `${shape} × ${counted(a.gpus / a.tasksPerNode, "GPU")} ${total}`
    : `${shape}, ${counted(a.gpus, "GPU")} a node ${total}`
  return [
    gpus,
    `${counted(a.cpus, "CPU")} a task`,
    ...(a.memory === undefined ? [] : [`${a.memory} a node`])
  ].join(", ")
}

/**
 * The arguments of the `sardine step` command that runs `step` of the request's plan elsewhere (a child process, a
 * batch job), with the request's cache, tracking, lock lease, engine and forcing; after sardine's entry command.
 */
export const stepCommandArguments = (request: ExecutionRequest, step: Step): ReadonlyArray<string> => [
  "step",
  request.loaded.file,
  step.id,
  ...runOptionArguments(request),
  ...(request.force.has(step.id) ? ["--force"] : [])
]

/** The options `sardine step` and `sardine step-worker` share: the request's cache, tracking, lock lease and engine. */
const runOptionArguments = (request: ExecutionRequest): ReadonlyArray<string> => [
  "--cache-dir",
  request.cacheDir,
  "--tracking-uri",
  request.trackingUri,
  "--lock-lease",
  String(Duration.toSeconds(request.lockLease)),
  ...(request.engine === undefined ? [] : ["--engine", request.engine])
]

/**
 * The arguments of the `sardine step-worker` command that runs steps of the request's plan as they are asked for on its
 * stdin (one `StepWorkerRequest` a line), with the request's cache, tracking, lock lease and engine; after sardine's
 * entry command.
 */
export const stepWorkerArguments = (request: ExecutionRequest): ReadonlyArray<string> => [
  "step-worker",
  request.loaded.file,
  ...runOptionArguments(request)
]

/** A line on a step worker's stdin: run this step of the plan (again from scratch with `force`). */
export const StepWorkerRequest = Schema.Struct({ step: Schema.String, force: Schema.Boolean })
export type StepWorkerRequest = typeof StepWorkerRequest.Type

/** Where the steps of a plan run. The outcomes are the local runner's, whichever executor ran them. */
export interface Executor {
  readonly name: "local" | "processes" | "slurm"
  /**
   * Runs every selected step that is not cached, each after its inputs; a failed step blocks only
   * the steps that need it. Interruption stops (or cancels) whatever is still running.
   */
  readonly execute: (
    request: ExecutionRequest
  ) => Effect.Effect<ReadonlyArray<StepOutcome>, ExecutorError, Progress | StepImplementations | FileSystem.FileSystem>
  /** The job each step of the plan last ran as, by step id, with its current state; none for in-process steps. */
  readonly jobs: (plan: Plan, cacheDir: string) => Effect.Effect<ReadonlyMap<string, StepJob>, ExecutorError>
}

/** How the request's steps run in this process (see runner.ts). */
export const inProcessOptions = (request: ExecutionRequest): RunOptions => ({
  cacheDir: request.cacheDir,
  declarationDir: request.loaded.directory,
  only: request.only,
  concurrency: request.concurrency,
  tracking: request.tracking,
  resources: (step) => stepResources(request.loaded.declaration, step),
  force: request.force,
  lockLease: request.lockLease
})

/** The default executor: the local runner, every step in this process. */
export const localExecutor: Executor = {
  name: "local",
  execute: (request) =>
    Effect.gen(function*() {
      const { handlers } = yield* StepImplementations
      // The runner turns every step failure into an outcome; only interruption leaves it early.
      return yield* runPlan(request.plan, handlers, inProcessOptions(request)).pipe(Effect.orDie)
    }),
  jobs: () => Effect.succeed(new Map())
}

export interface SlurmChoice {
  readonly _tag: "slurm"
  /** Partition and account for every job, over what the declaration says. */
  readonly partition?: string
  readonly account?: string
  /** Run the SLURM commands on this host through `ssh` (a login node); locally when absent. */
  readonly ssh?: string
}

export type ExecutorChoice = { readonly _tag: "local" } | { readonly _tag: "processes" } | SlurmChoice

/** Opens the executor the user chose; the composition root provides it (the slurm one lives in adapters/). */
export class ExecutorFactory extends Context.Tag("sardine/ExecutorFactory")<ExecutorFactory, {
  readonly open: (choice: ExecutorChoice) => Effect.Effect<Executor, ExecutorError>
}>() {}
