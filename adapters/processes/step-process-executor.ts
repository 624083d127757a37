import { FileSystem } from "@effect/platform"
import { Effect, Schema } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"
import { createInterface } from "node:readline"
import type { Step, StepKind } from "../../framework/plan/step.ts"
import { fileProblem } from "../../framework/files/file-errors.ts"
import { Progress, type ProgressEvent, progressEventOf, type StepMeter } from "../../framework/runner/progress.ts"
import { executeStep, scheduleSteps, stepLabel } from "../../framework/runner/runner.ts"
import { StepImplementations } from "../../framework/runner/step-implementations.ts"
import { type ExecutionRequest, type Executor, inProcessOptions, type StepWorkerRequest, stepWorkerArguments } from "../../framework/services/executor.ts"

export interface StepProcessOptions {
  /** The command that starts sardine, before `step-worker <file> …`. */
  readonly entry: ReadonlyArray<string>
  /** How long a stopped step's worker may take to release its lock and exit before it is killed. */
  readonly stopGraceMs: number
}

/** A step failed in its worker, or its worker could not start or ended without answering. */
export class StepProcessFailed extends Schema.TaggedError<StepProcessFailed>()("StepProcessFailed", {
  step: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}

/** Lines of a failed step's output shown with its failure. */
const tailLines = 20

/** `<cache>/jobs/logs/`: the output of every step run in a worker (`<key>.pid<worker's pid>.out`), next to SLURM jobs'. */
const logsDir = (cacheDir: string) => join(cacheDir, "jobs", "logs")

/** A `sardine step-worker` process: the lines it writes go to the step it runs, and nowhere between steps. */
interface StepWorker {
  readonly child: ChildProcess
  readonly pid: number
  onLine: (line: string) => void
  /** Called once the worker is gone, with how it went. */
  onClose: (how: string) => void
  /** How it went, once it is gone. */
  gone?: string
}

/** How a step ended in its worker: the worker's answer, or the worker's end. */
type Ended =
  | { readonly _tag: "finished"; readonly status: "ran" | "cached" | "failed"; readonly message: string; readonly tail: ReadonlyArray<string> }
  | { readonly _tag: "closed"; readonly how: string; readonly tail: ReadonlyArray<string> }

/** Passes a child's progress event on to the step's meter (or the run's notes). */
const forward = (event: Exclude<ProgressEvent, { event: "finished" }>, id: string, meter: StepMeter, note: (message: string) => Effect.Effect<void>) =>
  Effect.runSync(
    event.event === "update"
      ? meter.update(event.done, event.total, event.unit)
      : event.event === "log"
      ? meter.log(event.message)
      : note(`${id}: ${event.message}`)
  )

/** Stops a worker with one SIGTERM (its step releases its lock, keeps its work folder), SIGKILL after the grace. */
const stopWorker = (worker: StepWorker, graceMs: number) =>
  Effect.async<void>((stopped) => {
    if (worker.gone !== undefined) return stopped(Effect.void)
    const kill = setTimeout(() => worker.child.kill("SIGKILL"), graceMs)
    worker.child.once("close", () => {
      clearTimeout(kill)
      stopped(Effect.void)
    })
    worker.child.kill("SIGTERM")
  })

/**
 * The step workers of a run, started as steps need them (at most one per place, since the run runs at most that
 * many steps at once) and reused step after step; closing the scope ends the idle ones (their stdin closed) and
 * stops the others.
 */
const makeWorkerPool = (request: ExecutionRequest, options: StepProcessOptions) =>
  Effect.gen(function*() {
    const all = new Set<StepWorker>()
    const idle: Array<StepWorker> = []
    const [file = process.execPath, ...entryArgs] = options.entry
    const start = (): StepWorker => {
      const child = spawn(file, [...entryArgs, ...stepWorkerArguments(request)], {
        stdio: ["pipe", "pipe", "pipe"],
        env: { ...process.env, SARDINE_PROGRESS: "events" },
        detached: true
      })
      const worker: StepWorker = { child, pid: child.pid ?? -1, onLine: () => undefined, onClose: () => undefined }
      createInterface({ input: child.stdout! }).on("line", (line) => worker.onLine(line))
      createInterface({ input: child.stderr! }).on("line", (line) => worker.onLine(line))
      const gone = (how: string) => {
        if (worker.gone !== undefined) return
        worker.gone = how
        all.delete(worker)
        worker.onClose(how)
      }
      // A worker that is gone is answered for by its "close"; writing to it then fails, which is no news.
      child.stdin!.on("error", () => undefined)
      child.on("error", (e) => gone(`could not be started (${file}): ${e.message}`))
      child.on("close", (code, signal) => gone(code === null ? `was killed by ${signal}` : `exited with code ${code}`))
      all.add(worker)
      return worker
    }
    // An idle worker ends when its stdin does; one that does not within the grace, or is still busy, is stopped.
    const end = (worker: StepWorker) =>
      Effect.async<void>((ended) => {
        if (worker.gone !== undefined) return ended(Effect.void)
        worker.child.once("close", () => ended(Effect.void))
        worker.child.stdin!.end()
      }).pipe(Effect.timeout(options.stopGraceMs), Effect.catchAll(() => stopWorker(worker, options.stopGraceMs)))
    yield* Effect.addFinalizer(() =>
      Effect.forEach([...all], (worker) => idle.includes(worker) ? end(worker) : stopWorker(worker, options.stopGraceMs), {
        concurrency: "unbounded",
        discard: true
      })
    )
    return {
      take: (): StepWorker => {
        let worker = idle.pop()
        while (worker?.gone !== undefined) worker = idle.pop()
        return worker ?? start()
      },
      give: (worker: StepWorker) => {
        worker.onLine = () => undefined
        worker.onClose = () => undefined
        if (worker.gone === undefined) idle.push(worker)
      }
    }
  })

type WorkerPool = Effect.Effect.Success<ReturnType<typeof makeWorkerPool>>

/**
 * Runs one step in a step worker (a free one, or a new one) and waits for its answer: its progress shows in this
 * run's lines, its other output goes to its log. The worker runs in its own process group, so a Ctrl-C at the
 * terminal reaches this process only, which stops the worker with one SIGTERM (lock released, work folder kept) —
 * two signals would make it quit without cleaning up.
 */
const stepInWorker = (request: ExecutionRequest, step: Step, pool: WorkerPool, options: StepProcessOptions) =>
  Effect.gen(function*() {
    const progress = yield* Progress
    const fs = yield* FileSystem.FileSystem
    const logs = logsDir(request.cacheDir)
    yield* fs.makeDirectory(logs, { recursive: true }).pipe(
      Effect.mapError((e) => new StepProcessFailed({ step: step.id, reason: `cannot create ${logs}: ${fileProblem(e)}` }))
    )
    const meter = yield* progress.begin(step.id, stepLabel(step))
    const worker = pool.take()
    const log = join(logs, `${step.key}.pid${worker.pid}.out`)
    // The worker's lines other than its progress events while it runs this step: the step's log, written when it ends.
    const lines: Array<string> = []
    const writeLog = Effect.suspend(() => fs.writeFileString(log, lines.map((l) => `${l}\n`).join("")).pipe(Effect.catchAll(() => Effect.void)))
    const ended = yield* Effect.async<Ended, StepProcessFailed>((resume) => {
      worker.onLine = (line) => {
        const event = progressEventOf(line)
        if (event === undefined) lines.push(line)
        else if (event.event !== "finished") forward(event, step.id, meter, progress.note)
        else if (event.step === step.id) {
          resume(Effect.succeed({ _tag: "finished", status: event.status, message: event.message, tail: lines.slice(-tailLines) }))
        }
      }
      worker.onClose = (how) => resume(Effect.succeed({ _tag: "closed", how, tail: lines.slice(-tailLines) }))
      if (worker.gone !== undefined) return resume(Effect.succeed({ _tag: "closed", how: worker.gone, tail: [] }))
      worker.child.stdin!.write(`${JSON.stringify({ step: step.id, force: request.force.has(step.id) } satisfies StepWorkerRequest)}\n`)
      return stopWorker(worker, options.stopGraceMs)
    }).pipe(
      Effect.ensuring(writeLog),
      Effect.onInterrupt(() => progress.end(step.id, "killed")),
      Effect.ensuring(Effect.sync(() => pool.give(worker)))
    )
    if (ended._tag === "finished" && ended.status !== "failed") {
      yield* progress.end(step.id, ended.status === "cached" ? "cached" : "done")
      return ended.status
    }
    yield* progress.end(step.id, "failed")
    const why = ended._tag === "finished" ? ended.message : `its process ${ended.how}`
    return yield* new StepProcessFailed({ step: step.id, reason: `${why}; last lines of ${log}:\n${ended.tail.join("\n")}` })
  })

/**
 * The steps that run in step workers: the engine's trainings and generations (a minute, half a minute each on the
 * demo), which a second core speeds up. The others, seconds each, run in this process.
 */
const childKinds: ReadonlySet<StepKind> = new Set(["train", "train-clip", "generate"])

/**
 * Runs each training and generation in a step worker (`sardine step-worker`, a child process that runs the steps it is
 * given one after another, started once per place) and every other step in this process; at most the request's
 * `concurrency` steps at once, each after its inputs. Several steps use several cores (the tfjs engine computes a step
 * on one), and a step that crashes its worker takes no other step with it. The cache, locks and MLflow runs are
 * `sardine run`'s own.
 */
export const stepProcessExecutor = (options: StepProcessOptions): Executor => ({
  name: "processes",
  execute: (request) =>
    Effect.gen(function*() {
      const { handlers } = yield* StepImplementations
      const inProcess = inProcessOptions(request)
      const pool = yield* makeWorkerPool(request, options)
      return yield* scheduleSteps(
        request.plan,
        (step) => childKinds.has(step.kind) ? stepInWorker(request, step, pool, options) : executeStep(request.plan, step, handlers, inProcess),
        request
      )
    }).pipe(Effect.scoped),
  jobs: () => Effect.succeed(new Map())
})
