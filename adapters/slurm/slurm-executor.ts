import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Effect, Exit, Schedule } from "effect"
import { join } from "node:path"
import type { StepResources } from "../../framework/declaration/resources.ts"
import { stepResources } from "../../framework/plan/step-resources.ts"
import type { Plan, Step } from "../../framework/plan/step.ts"
import { cacheLayout, isDone, readManifestIn } from "../../framework/runner/cache.ts"
import { Progress } from "../../framework/runner/progress.ts"
import { resumableKinds, resumePoint } from "../../framework/runner/resume-point.ts"
import { cachedSteps, selectSteps, type StepOutcome, type StepStatus } from "../../framework/runner/runner.ts"
import {
  ExecutorError,
  type ExecutionRequest,
  type Executor,
  type JobAllocation,
  type SlurmChoice,
  stepCommandArguments,
  type StepJob
} from "../../framework/services/executor.ts"
import { fileProblem } from "../../framework/files/file-errors.ts"
import { logsDir, readJobRecord, writeJobRecord, type JobRecord } from "./job-records.ts"
import { batchScript, sbatchArguments, srunEnvironment, trainingTasks, type TrainingTasks } from "./job-script.ts"
import { logTail } from "./log-tail.ts"
import { cancel, isFinal, jobStates, submit, type JobState } from "./queue.ts"
import { checkSharedCache } from "./shared-cache-probe.ts"
import { timeLimitReached } from "./time-limit.ts"
import type { SlurmCommandError, Shell } from "./shell.ts"

export interface SlurmExecutorOptions {
  readonly choice: SlurmChoice
  /** Where sbatch, squeue, sacct and scancel run. */
  readonly shell: Shell
  /** The shell for jobs submitted through another host (their records say which), for `status`. */
  readonly shellFor: (ssh: string | undefined) => Shell
  /** The command that starts sardine inside a job, before `step <file> <step-id> …`. */
  readonly entry: ReadonlyArray<string>
  /** Milliseconds between two looks at the queue. */
  readonly pollMs: number
  /** The folder jobs start in. */
  readonly workingDir: string
}

/** Lines of a failed job's log shown with its failure. */
const tailLines = 20
/** Looks at the queue that may fail in a row (the controller restarting, a network blip) before giving up. */
const queueRetries = 10
/** Looks in a row at which SLURM knows nothing of a job before it counts as gone. */
const unknownLimit = 3

const fail = (reason: string) => new ExecutorError({ executor: "slurm", reason })
const fromCommand = (e: SlurmCommandError) => fail(e.message)

interface Tracked {
  readonly jobId: string
  readonly submittedAt: number
  readonly log: string
  started: boolean
  unknown: number
}

const allocationOf = (r: StepResources, tasks: TrainingTasks | undefined): JobAllocation => ({
  gpus: r.gpus ?? 0,
  cpus: r.cpus ?? 1,
  ...(r.memory === undefined ? {} : { memory: r.memory }),
  ...(tasks === undefined ? {} : { nodes: tasks.nodes, tasksPerNode: tasks.perNode })
})

const labelOf = (step: Step, jobId: string) => `${step.kind.padEnd(14)} ${step.id}  (job ${jobId})`

/**
 * Runs each step as a SLURM batch job executing `sardine step`: one job per step not cached, with
 * its declared resources, after the jobs of its inputs (`afterok`). SLURM queues and runs them;
 * this process watches the queue, reports each job as it starts and ends (a failed job with the
 * end of its log) and cancels what is still queued or running when interrupted.
 */
export const slurmExecutor = (options: SlurmExecutorOptions): Executor => {
  const { choice, entry, pollMs, shell } = options
  const overrides: Partial<StepResources> = {
    ...(choice.partition === undefined ? {} : { partition: choice.partition }),
    ...(choice.account === undefined ? {} : { account: choice.account })
  }

  const execute = (request: ExecutionRequest) =>
    Effect.gen(function*() {
      const progress = yield* Progress
      const { cacheDir, loaded, plan } = request
      const resourcesOf = (step: Step): StepResources => ({ ...stepResources(loaded.declaration, step), ...overrides })
      const selected = selectSteps(plan, request.only)
      const cached = yield* cachedSteps(plan, cacheDir)
      const outcomes = new Map<string, StepOutcome>()
      const settle = (step: Step, status: StepStatus, since: number, detail?: string) =>
        outcomes.set(step.id, { step, status, durationMs: Date.now() - since, ...(detail === undefined ? {} : { detail }) })
      const begun = Date.now()
      for (const step of plan.steps) {
        if (!selected.has(step.id)) settle(step, "not selected", begun)
        else if (cached.has(step.id) && !request.force.has(step.id)) settle(step, "cached", begun)
      }
      const toRun = plan.steps.filter((s) => !outcomes.has(s.id))
      const [firstToRun] = toRun
      if (firstToRun === undefined) return plan.steps.map((s) => outcomes.get(s.id)!)

      // The probe goes where the first job will go.
      const { account, partition } = resourcesOf(firstToRun)
      yield* checkSharedCache(
        shell,
        cacheDir,
        { ...(partition === undefined ? {} : { partition }), ...(account === undefined ? {} : { account }) },
        pollMs,
        progress.note
      )
      const logs = logsDir(cacheDir)
      const fs = yield* FileSystem.FileSystem
      yield* fs.makeDirectory(logs, { recursive: true }).pipe(Effect.mapError((e) => fail(`cannot create ${logs}: ${fileProblem(e)}`)))

      const tracked = new Map<string, Tracked>()
      const unsettled = () => toRun.filter((s) => !outcomes.has(s.id))

      const submitAll = Effect.gen(function*() {
        const records = yield* Effect.forEach(toRun, (s) => readJobRecord(cacheDir, s.key))
        const ours = records.filter((r): r is JobRecord => r !== undefined && r.ssh === shell.host)
        const { states: known } = yield* jobStates(shell, ours.map((r) => r.jobId)).pipe(Effect.mapError(fromCommand))
        for (const [i, step] of toRun.entries()) {
          const record = records[i]
          const state = record === undefined || record.ssh !== shell.host ? undefined : known.get(record.jobId)
          if (record !== undefined && state !== undefined && !isFinal(state.state)) {
            tracked.set(step.id, { jobId: record.jobId, submittedAt: Date.parse(record.submittedAt), log: record.log, started: false, unknown: 0 })
            yield* progress.note(`${step.id}: job ${record.jobId} from an earlier submission is ${state.state}; not submitting it again`)
            continue
          }
          const after = step.inputs.map((input) => tracked.get(input.step)?.jobId).filter((id): id is string => id !== undefined)
          const resources = resourcesOf(step)
          const tasks = trainingTasks(step, resources)
          const args = sbatchArguments({
            name: `sardine:${step.id}`,
            output: join(logs, `${step.key}.%j.out`),
            chdir: options.workingDir,
            resources,
            after,
            ...(tasks === undefined ? {} : { tasks })
          })
          const command = [...entry, ...stepCommandArguments(request, step)]
          const script = batchScript(command, `sardine step ${step.id} of ${plan.name} (key ${step.key})`, tasks === undefined ? {} : srunEnvironment)
          const submittedAt = Date.now()
          // Once sbatch accepted a job, it is tracked (and so cancelled on Ctrl-C) whatever happens next.
          const jobId = yield* Effect.uninterruptible(
            submit(shell, args, script).pipe(
              Effect.tap((id) =>
                Effect.sync(() => tracked.set(step.id, { jobId: id, submittedAt, log: join(logs, `${step.key}.${id}.out`), started: false, unknown: 0 }))
              )
            )
          ).pipe(Effect.mapError((e) => fail(`cannot submit ${step.id}: ${e.message}`)))
          yield* writeJobRecord(cacheDir, {
            stepId: step.id,
            key: step.key,
            jobId,
            submittedAt: new Date(submittedAt).toISOString(),
            log: tracked.get(step.id)!.log,
            ...(shell.host === undefined ? {} : { ssh: shell.host }),
            allocation: allocationOf(resources, tasks)
          })
          yield* progress.note(`submitted ${step.id} as job ${jobId}${after.length === 0 ? "" : ` (after ${after.join(", ")})`}`)
        }
      })

      /**
       * The checkpoint a training's work folder holds, if any. A record that cannot be read counts as none here;
       * the next run, resuming, names it.
       */
      const savedCheckpoint = (step: Step) =>
        resumableKinds.has(step.kind)
          ? resumePoint(cacheLayout(cacheDir).partial(step.key)).pipe(Effect.orElseSucceed(() => undefined))
          : Effect.succeed(undefined)

      /** A job that ended: done when its output is in the cache, failed (with its log) otherwise. */
      const finish = (step: Step, job: Tracked, state: JobState | undefined, sacctUnavailable?: string) =>
        Effect.gen(function*() {
          const cache = cacheLayout(cacheDir)
          const done = state === undefined || state.state === "COMPLETED" ? yield* isDone(cache, step.key) : false
          if (!done) {
            const what = state?.state === "TIMEOUT"
              ? timeLimitReached(step.kind, resourcesOf(step).time, yield* savedCheckpoint(step))
              : state !== undefined
              ? `ended ${state.state}${state.exitCode === undefined ? "" : ` (exit code ${state.exitCode})`}`
              : `is no longer known to SLURM${sacctUnavailable === undefined ? "" : ` (the controller forgot it; ${sacctUnavailable})`}`
            const because = state?.state === "COMPLETED" ? ` but ${cache.done(step.key)} holds no finished output` : ""
            const tail = yield* logTail(job.log, tailLines)
            const detail = `job ${job.jobId} ${what}${because}; ` +
              ("tail" in tail ? `last lines of ${job.log}:\n${tail.tail}` : `its log ${job.log} cannot be read (${tail.unreadable})`)
            yield* progress.end(step.id, "failed")
            yield* progress.note(`${step.id}: ${detail}`)
            return settle(step, "failed", job.submittedAt, detail)
          }
          // A step found already done when its job took the lock (another run finished it) counts as cached.
          const manifest = yield* readManifestIn(cache.done(step.key)).pipe(Effect.mapError((e) => fail(e.message)))
          const ranHere = Date.parse(manifest.startedAt) >= job.submittedAt - 1000
          yield* progress.end(step.id, ranHere ? "done" : "cached")
          settle(step, ranHere ? "ran" : "cached", job.submittedAt)
        })

      const look = Effect.gen(function*() {
        const active = unsettled().map((s) => tracked.get(s.id)!.jobId)
        const { sacctUnavailable, states } = yield* jobStates(shell, active).pipe(
          Effect.mapError(fromCommand),
          Effect.tapError((e) => progress.note(`cannot read the queue (will retry): ${e.reason}`)),
          Effect.retry({ times: queueRetries, schedule: Schedule.spaced(pollMs) })
        )
        const toCancel: Array<string> = []
        // Plan order: an input is settled before the steps that need it.
        for (const step of unsettled()) {
          const job = tracked.get(step.id)!
          const blocker = step.inputs.map((i) => outcomes.get(i.step)).find((o) => o?.status === "failed" || o?.status === "blocked")
          if (blocker !== undefined) {
            // SLURM drops a job whose dependency failed (--kill-on-invalid-dep); cancelling makes sure.
            toCancel.push(job.jobId)
            if (job.started) yield* progress.end(step.id, "cancelled")
            settle(step, "blocked", job.submittedAt, `needs ${blocker.step.id} (${blocker.status})`)
            continue
          }
          const state = states.get(job.jobId)
          if (state === undefined) {
            job.unknown += 1
            if (job.unknown >= unknownLimit) yield* finish(step, job, undefined, sacctUnavailable)
            continue
          }
          job.unknown = 0
          if (!job.started && (state.state === "RUNNING" || isFinal(state.state))) {
            job.started = true
            yield* progress.begin(step.id, labelOf(step, job.jobId))
          }
          if (isFinal(state.state)) yield* finish(step, job, state)
        }
        yield* cancel(shell, toCancel).pipe(Effect.ignore)
      })

      const watch = Effect.gen(function*() {
        while (unsettled().length > 0) {
          yield* Effect.sleep(pollMs)
          yield* look
        }
      })

      yield* Effect.zipRight(submitAll, watch).pipe(
        Effect.onExit((exit) => {
          if (Exit.isSuccess(exit)) return Effect.void
          const pending = unsettled().flatMap((s) => tracked.get(s.id)?.jobId ?? [])
          if (pending.length === 0) return Effect.void
          return cancel(shell, pending).pipe(
            Effect.zipRight(progress.note(`cancelled job${pending.length === 1 ? "" : "s"} ${pending.join(", ")}`)),
            Effect.catchAll((e) => progress.note(`could not cancel jobs ${pending.join(", ")}: ${e.message}`))
          )
        })
      )
      return plan.steps.map((s) => outcomes.get(s.id)!)
    })

  const jobs = (plan: Plan, cacheDir: string) =>
    Effect.gen(function*() {
      const records = (yield* Effect.forEach(plan.steps, (s) => readJobRecord(cacheDir, s.key))).filter((r): r is JobRecord => r !== undefined)
      const hosts = [...new Set(records.map((r) => r.ssh))]
      const states = new Map<string, JobState>()
      for (const host of hosts) {
        const ids = records.filter((r) => r.ssh === host).map((r) => r.jobId)
        const known = yield* jobStates(options.shellFor(host), ids).pipe(Effect.mapError(fromCommand))
        for (const [id, state] of known.states) states.set(id, state)
      }
      return new Map(records.map((r): [string, StepJob] => [r.stepId, {
        jobId: r.jobId,
        // The controller forgets only ended jobs; without accounting nothing says how they ended.
        state: states.get(r.jobId)?.state ?? "ENDED",
        submittedAt: r.submittedAt,
        log: r.log,
        ...(r.allocation === undefined ? {} : { allocation: r.allocation })
      }]))
    }).pipe(
      // The service's `jobs` requires nothing (`execute` gets the FileSystem from its caller).
      Effect.provide(NodeFileSystem.layer)
    )

  return { name: "slurm", execute, jobs }
}
