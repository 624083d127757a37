import { FileSystem } from "@effect/platform"
import { Effect, Schema } from "effect"
import { spawn } from "node:child_process"
import { join } from "node:path"
import { createInterface } from "node:readline"
import type { Step, StepKind } from "../../framework/plan/step.ts"
import { fileProblem } from "../../framework/files/file-errors.ts"
import { Progress, progressEventOf, type StepMeter } from "../../framework/runner/progress.ts"
import { executeStep, scheduleSteps, stepLabel } from "../../framework/runner/runner.ts"
import { StepImplementations } from "../../framework/runner/step-implementations.ts"
import { type ExecutionRequest, type Executor, inProcessOptions, stepCommandArguments } from "../../framework/services/executor.ts"

export interface StepProcessOptions {
  /** The command that starts sardine, before `step <file> <step-id> …`. */
  readonly entry: ReadonlyArray<string>
  /** How long a stopped step's process may take to release its lock and exit before it is killed. */
  readonly stopGraceMs: number
}

/** A step's process could not start, or ended without its output. */
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

/** `<cache>/jobs/logs/`: every step process's output, next to SLURM jobs' (one file per process). */
const logsDir = (cacheDir: string) => join(cacheDir, "jobs", "logs")

interface Ended {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly tail: ReadonlyArray<string>
  readonly cached: boolean
}

/** Passes a child's progress event on to the step's meter (or the run's notes). */
const forward = (line: string, id: string, meter: StepMeter, note: (message: string) => Effect.Effect<void>): boolean => {
  const event = progressEventOf(line)
  if (event === undefined) return false
  Effect.runSync(
    event.event === "update"
      ? meter.update(event.done, event.total, event.unit)
      : event.event === "log"
      ? meter.log(event.message)
      : note(`${id}: ${event.message}`)
  )
  return true
}

/**
 * Runs one step as `sardine step` in a child process of its own and waits for it: its progress
 * shows in this run's lines, its other output goes to its log. The child runs in its own process
 * group, so a Ctrl-C at the terminal reaches this process only, which stops the child with one
 * SIGTERM (lock released, work folder kept) — two signals would make it quit without cleaning up.
 */
const stepProcess = (request: ExecutionRequest, step: Step, options: StepProcessOptions) =>
  Effect.gen(function*() {
    const progress = yield* Progress
    const fs = yield* FileSystem.FileSystem
    const logs = logsDir(request.cacheDir)
    yield* fs.makeDirectory(logs, { recursive: true }).pipe(
      Effect.mapError((e) => new StepProcessFailed({ step: step.id, reason: `cannot create ${logs}: ${fileProblem(e)}` }))
    )
    const meter = yield* progress.begin(step.id, stepLabel(step))
    const [file = process.execPath, ...entryArgs] = options.entry
    const args = [...entryArgs, ...stepCommandArguments(request, step)]
    let log = ""
    // The child's lines other than its progress events: its log, written when it ends (however it ends).
    const lines: Array<string> = []
    const writeLog = Effect.suspend(() =>
      log === "" ? Effect.void : fs.writeFileString(log, lines.map((l) => `${l}\n`).join("")).pipe(Effect.catchAll(() => Effect.void))
    )
    const ended = yield* Effect.async<Ended, StepProcessFailed>((resume) => {
      const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SARDINE_PROGRESS: "events" }, detached: true })
      log = join(logs, `${step.key}.pid${child.pid ?? "-none"}.out`)
      let cached = false
      const onLine = (line: string) => {
        if (forward(line, step.id, meter, progress.note)) return
        lines.push(line)
        // `sardine step` ends with "<id>: ran|cached (cache: …)".
        if (line.startsWith(`${step.id}: cached (`)) cached = true
      }
      createInterface({ input: child.stdout }).on("line", onLine)
      createInterface({ input: child.stderr }).on("line", onLine)
      child.on("error", (e) => resume(Effect.fail(new StepProcessFailed({ step: step.id, reason: `cannot start ${file}: ${e.message}` }))))
      child.on("close", (code, signal) => resume(Effect.succeed({ code, signal, tail: lines.slice(-tailLines), cached })))
      return Effect.async<void>((stopped) => {
        if (child.exitCode !== null || child.signalCode !== null) return stopped(Effect.void)
        const kill = setTimeout(() => child.kill("SIGKILL"), options.stopGraceMs)
        child.on("close", () => {
          clearTimeout(kill)
          stopped(Effect.void)
        })
        child.kill("SIGTERM")
      })
    }).pipe(Effect.ensuring(writeLog), Effect.onInterrupt(() => progress.end(step.id, "killed")))
    if (ended.code === 0) {
      yield* progress.end(step.id, ended.cached ? "cached" : "done")
      return ended.cached ? "cached" as const : "ran" as const
    }
    yield* progress.end(step.id, "failed")
    const how = ended.code === null ? `was killed by ${ended.signal}` : `exited with code ${ended.code}`
    return yield* new StepProcessFailed({ step: step.id, reason: `its process ${how}; last lines of ${log}:\n${ended.tail.join("\n")}` })
  })

/**
 * The steps that run in child processes: the engine's trainings and generations (a minute, half a minute each on
 * the demo), where a second core pays for a process's start (≈ 8 s of CPU on a 2-core machine: Node, tsx, the plan,
 * the tracking it opens and sends). The others, seconds each, run in this process.
 */
const childKinds: ReadonlySet<StepKind> = new Set(["train", "train-clip", "generate"])

/**
 * Runs each training and generation as `sardine step` in a child process and every other step in this process;
 * at most the request's `concurrency` steps at once, each after its inputs. Several steps use several cores (the
 * tfjs engine computes a step on one), and a step that crashes its process takes no other step with it. The
 * cache, locks and MLflow runs are `sardine run`'s own.
 */
export const stepProcessExecutor = (options: StepProcessOptions): Executor => ({
  name: "processes",
  execute: (request) =>
    Effect.gen(function*() {
      const { handlers } = yield* StepImplementations
      const inProcess = inProcessOptions(request)
      return yield* scheduleSteps(
        request.plan,
        (step) => childKinds.has(step.kind) ? stepProcess(request, step, options) : executeStep(request.plan, step, handlers, inProcess),
        request
      )
    }),
  jobs: () => Effect.succeed(new Map())
})
