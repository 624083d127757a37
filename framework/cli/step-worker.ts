import { Command } from "@effect/cli"
import { Cause, Effect, Either, Exit, Schema, Stream } from "effect"
import { createInterface } from "node:readline"
import { eventLine, type ProgressEvent } from "../runner/progress.ts"
import { StepWorkerRequest } from "../services/executor.ts"
import { cacheDirOption } from "./cache-dir.ts"
import { declarationFile } from "./declaration-file.ts"
import { loadPlan } from "./declaration-plan.ts"
import { engineOption } from "./engine-option.ts"
import { trackingUriOption } from "./run.ts"
import { planStep, runServedStep } from "./step.ts"
import { lockLeaseOption } from "./step-options.ts"

const decodeRequest = Schema.decodeUnknownEither(Schema.parseJson(StepWorkerRequest))

const messageOf = (cause: Cause.Cause<unknown>) => {
  const error = Cause.squash(cause)
  return error instanceof Error ? error.message : String(error)
}

/** How a step ended, on stderr with the step's own progress events, so that it follows them. */
const finished = (event: Omit<Extract<ProgressEvent, { event: "finished" }>, "event">) =>
  Effect.sync(() => process.stderr.write(eventLine({ event: "finished", ...event })))

/**
 * `sardine step-worker`: runs the steps of a plan asked for on stdin, one JSON request a line, one after
 * another in this process, each exactly as `sardine step` runs it; ends when stdin does. What
 * `sardine run --executor processes` starts once per place, so that Node, the modules and the plan are
 * loaded once per process rather than once per step. A step that fails is reported and the next is
 * served; a signal stops the step it runs (lock released, work folder kept) and the process.
 */
export const stepWorkerCommand = Command.make(
  "step-worker",
  { file: declarationFile, cacheDir: cacheDirOption, trackingUri: trackingUriOption, lockLease: lockLeaseOption, engine: engineOption },
  ({ cacheDir, engine, file, lockLease, trackingUri }) =>
    Effect.gen(function*() {
      const { loaded, plan } = yield* loadPlan(file, { engine, check: true, cacheDir, remember: true })
      const lines = Stream.fromAsyncIterable(createInterface({ input: process.stdin }), (e) => e)
      yield* Stream.runForEach(lines, (line) =>
        Effect.gen(function*() {
          if (line.trim() === "") return
          const request = decodeRequest(line)
          if (Either.isLeft(request)) {
            return yield* finished({ step: "", status: "failed", message: `not a step request: ${line}` })
          }
          const { force, step: id } = request.right
          const exit = yield* Effect.exit(
            Effect.flatMap(planStep(plan, id), (step) => runServedStep(loaded, plan, step, { cacheDir, trackingUri, force, lockLease }))
          )
          if (Exit.isSuccess(exit)) return yield* finished({ step: id, status: exit.value, message: "" })
          if (Cause.isInterruptedOnly(exit.cause)) return yield* Effect.interrupt
          const message = messageOf(exit.cause)
          yield* Effect.sync(() => process.stderr.write(`error: ${message}\n`))
          yield* finished({ step: id, status: "failed", message })
        }))
    })
).pipe(
  Command.withDescription(
    "Run the steps of a declaration asked for on stdin (one {\"step\": id, \"force\": bool} a line), one after another in this process, " +
      "each as `sardine step` runs it; what `sardine run --executor processes` starts per place."
  )
)
