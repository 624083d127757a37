import { Effect, Either, Option, Queue } from "effect"
import { spawn, type ChildProcess } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { EngineError } from "../../framework/services/engine.ts"
import { decodeWorkerMessage, type Failure, type Hello, PROTOCOL, type WorkerMessage } from "./worker-protocol.ts"

/**
 * One operation of the torch worker as a child process (one process per step: a crash, a leak or the GPU
 * memory of one step never reaches the next, and SLURM runs steps as separate jobs anyway). The request
 * goes as one JSON line on stdin, which then stays open: its end tells the worker that this process is gone.
 * Messages come back as JSON lines (worker-protocol.ts), each handed to `onMessage` in order. The worker's
 * stderr (library warnings, a native crash's last words) is kept, its last lines quoted when it fails.
 *
 * Never a hang, never a silent success: a worker that exits without `result` is an error carrying its
 * exit status and last output; one that reports an exception is an error with its type, message and
 * frames. Interrupted (Ctrl-C, SIGTERM, a failing sibling step), the worker gets SIGTERM, checkpoints
 * and exits; it is killed if it has not within `STOP_GRACE_MS`.
 */

/** The folder holding the `sardine_torch` package. */
export const workerRoot = fileURLToPath(new URL("./worker", import.meta.url))

/** How long a stopping worker may take to write its checkpoint (an SDXL full-UNet one is tens of GB). */
const STOP_GRACE_MS = 600_000
/** After the process exits, how long its last output may take to arrive. */
const DRAIN_MS = 5_000
/** After its result, how long the worker may take to exit. */
const EXIT_MS = 60_000
const STDERR_LINES = 30

type WorkerEvent =
  | { readonly _tag: "line"; readonly text: string }
  | { readonly _tag: "eof" }
  | { readonly _tag: "exit"; readonly code: number | null; readonly signal: NodeJS.Signals | null }
  | { readonly _tag: "spawn-error"; readonly error: NodeJS.ErrnoException }

export interface WorkerRun {
  readonly python: string
  /** How `python` was found, for messages: "SARDINE_PYTHON", "the default venv …". */
  readonly source: string
  readonly operation: string
  readonly request: Readonly<Record<string, unknown>>
  /** Every message but hello and the final one, in order; a failure stops the worker. */
  readonly onMessage: (message: WorkerMessage) => Effect.Effect<void, EngineError>
}

export interface WorkerOutcome {
  readonly hello: Hello
  readonly value: unknown
}

const frameText = (f: Failure["frames"][number]) => `${f.file}:${f.line} in ${f.function}${f.code === "" ? "" : `: ${f.code}`}`

/** The hint every environment failure ends with. */
export const environmentHint =
  "the torch engine needs the packages of adapters/torch/requirements.txt: run `sardine engine setup torch`, or set SARDINE_PYTHON to a Python that has them"

const exitText = (code: number | null, signal: NodeJS.Signals | null) => signal !== null ? `was killed by ${signal}` : `exited with status ${code}`

/** Ends the worker: SIGTERM (it checkpoints and exits), then SIGKILL after the grace period. */
const stopWorker = (child: ChildProcess, exited: () => boolean) =>
  Effect.gen(function*() {
    if (exited()) return
    child.kill("SIGTERM")
    child.stdin?.end()
    const gone = yield* Effect.async<void>((resume) => {
      if (exited()) return resume(Effect.void)
      child.once("exit", () => resume(Effect.void))
    }).pipe(Effect.timeout(STOP_GRACE_MS), Effect.option)
    if (gone._tag === "None") child.kill("SIGKILL")
  })

export const runWorker = (run: WorkerRun): Effect.Effect<WorkerOutcome, EngineError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const fail = (reason: string, extra: { exception?: string; frames?: ReadonlyArray<string> } = {}) =>
        new EngineError({ operation: run.operation, reason, ...extra })
      const events = yield* Queue.unbounded<WorkerEvent>()
      const stderr: Array<string> = []
      let exited = false
      const child = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const child = spawn(run.python, ["-m", "sardine_torch"], {
            stdio: ["pipe", "pipe", "pipe"],
            env: {
              ...process.env,
              PYTHONPATH: [workerRoot, process.env.PYTHONPATH].filter((p) => p !== undefined && p !== "").join(":"),
              PYTHONUNBUFFERED: "1",
              // Every model is a local folder: no hub lookups, which a cluster node could not make anyway.
              HF_HUB_OFFLINE: "1"
            }
          })
          const verbose = process.env.SARDINE_TORCH_VERBOSE !== undefined && process.env.SARDINE_TORCH_VERBOSE !== ""
          createInterface({ input: child.stdout! })
            .on("line", (text) => Queue.unsafeOffer(events, { _tag: "line", text }))
            .on("close", () => Queue.unsafeOffer(events, { _tag: "eof" }))
          createInterface({ input: child.stderr! }).on("line", (text) => {
            stderr.push(text)
            if (stderr.length > STDERR_LINES) stderr.shift()
            if (verbose) process.stderr.write(`torch worker: ${text}\n`)
          })
          child.on("exit", (code, signal) => {
            exited = true
            Queue.unsafeOffer(events, { _tag: "exit", code, signal })
          })
          child.on("error", (error) => {
            if (child.pid === undefined) exited = true
            Queue.unsafeOffer(events, { _tag: "spawn-error", error })
          })
          // A worker that died early makes writing the request fail; its exit says why.
          child.stdin!.on("error", () => undefined)
          child.stdin!.write(`${JSON.stringify({ protocol: PROTOCOL, operation: run.operation, ...run.request })}\n`)
          return child
        }),
        (child) => stopWorker(child, () => exited)
      )
      const lastOutput = () => (stderr.length === 0 ? "" : `; its last output:\n    ${stderr.slice(-10).join("\n    ")}`)

      let hello: Hello | undefined
      let outcome: { readonly value: unknown } | undefined
      let eof = false
      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
      while (!(eof && exit !== undefined)) {
        // Once the process is gone, its remaining output gets a moment to arrive; once it answered, it gets a
        // moment to exit (a thread that never ends must not hold the step): no more.
        const wait = exit !== undefined ? DRAIN_MS : outcome !== undefined ? EXIT_MS : undefined
        const next = yield* (wait === undefined ? Effect.map(Queue.take(events), Option.some) : Effect.option(Effect.timeout(Queue.take(events), wait)))
        if (Option.isNone(next)) {
          if (exit === undefined) child.kill("SIGKILL")
          break
        }
        const event = next.value
        switch (event._tag) {
          case "spawn-error":
            if (child.pid !== undefined) continue
            return yield* fail(
              event.error.code === "ENOENT"
                ? `there is no Python at ${run.python} (${run.source}); ${environmentHint}`
                : `cannot start ${run.python} (${run.source}): ${event.error.message}`
            )
          case "eof":
            eof = true
            continue
          case "exit":
            exit = { code: event.code, signal: event.signal }
            continue
          case "line": {
            const decoded = decodeWorkerMessage(event.text)
            if (Either.isLeft(decoded)) {
              return yield* fail(`the torch worker sent a line that is not a protocol message: ${event.text.slice(0, 200)}`)
            }
            const message = decoded.right
            switch (message.type) {
              case "hello":
                hello = message
                continue
              case "result":
                outcome = { value: message.value }
                continue
              case "error": {
                const frames = message.frames.map(frameText)
                if (hello === undefined) {
                  return yield* fail(`${run.python} (${run.source}) cannot run the torch worker: ${message.exception}: ${message.message}; ${environmentHint}`)
                }
                return yield* fail(message.message, { exception: message.exception, frames })
              }
              case "stopped":
                return yield* fail(
                  `the torch worker stopped before finishing (${message.reason}); a training resumes from its last checkpoint on the next run`
                )
              default:
                yield* run.onMessage(message)
            }
          }
        }
      }
      if (hello === undefined || outcome === undefined) {
        const status = exit === undefined ? "stopped answering" : exitText(exit.code, exit.signal)
        return yield* fail(`the torch worker (${run.python}) ${status} before ${hello === undefined ? "starting" : "finishing"}${lastOutput()}`)
      }
      return { hello, value: outcome.value }
    })
  )
