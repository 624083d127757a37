import { CliConfig, Command, CommandDescriptor, ValidationError } from "@effect/cli"
import { Cause, Effect, Either, Exit, Layer } from "effect"
import { createRequire } from "node:module"
import { sardine } from "../framework/cli/sardine.ts"
import { commandShape, type UsageProblem, usageErrorLines } from "../framework/cli/usage-errors.ts"
import type { StepImplementations } from "../framework/runner/step-implementations.ts"
import { productionServices } from "./services.ts"

const { version } = createRequire(import.meta.url)("../package.json") as { version: string }

const messageOf = (error: unknown): string => error instanceof Error ? error.message : typeof error === "string" ? error : JSON.stringify(error)

type Services = Layer.Layer.Success<typeof productionServices>

/** Exit codes of a run stopped by a signal: 128 + the signal's number, as a shell reports it. */
const signalExitCode = { SIGINT: 130, SIGTERM: 143 } as const
type StopSignal = keyof typeof signalExitCode

/** Prints a usage error in a few lines (see usage-errors.ts); the exit code is 2. */
const usageError = (args: ReadonlyArray<string>, problem: UsageProblem) =>
  Effect.sync(() => {
    process.stderr.write(`${usageErrorLines(commandShape(sardine.descriptor), args, problem).join("\n")}\n`)
    return 2
  })

/**
 * Runs the `sardine` command line with the given service layers and maps outcomes to exit codes:
 * 0 ok, 1 failed, 2 usage error, 130 interrupted by Ctrl-C (SIGINT), 143 stopped by SIGTERM. Both
 * signals stop the same way: the running steps are interrupted, their locks released, nothing
 * half-written is committed. A second signal during that cleanup exits at once.
 */
export const runCli = <E>(steps: Layer.Layer<StepImplementations, E, Services>) => {
  const args = process.argv.slice(2)
  // The arguments are parsed first on their own, so that a usage error is sardine's short message
  // rather than @effect/cli's (which, printed by Command.run, cannot be replaced).
  const parsed = CommandDescriptor.parse(sardine.descriptor, ["sardine", ...args], CliConfig.defaultConfig)
  const main = Effect.either(parsed).pipe(
    Effect.flatMap((result) => {
      if (Either.isLeft(result) && !ValidationError.isHelpRequested(result.left)) return usageError(args, { _tag: "Invalid", error: result.left })
      if (Either.isRight(result) && result.right._tag === "UserDefined" && result.right.leftover.length > 0) {
        return usageError(args, { _tag: "Leftover", leftover: result.right.leftover })
      }
      return Command.run(sardine, { name: "sardine", version })(process.argv).pipe(
        Effect.as(0),
        Effect.catchAll((error) =>
          // A command that refuses its arguments while running says so the same way.
          ValidationError.isValidationError(error) ? usageError(args, { _tag: "Invalid", error }) : Effect.sync(() => {
            process.stderr.write(`error: ${messageOf(error)}\n`)
            return 1
          })
        )
      )
    }),
    Effect.provide(Layer.provideMerge(steps, productionServices))
  )
  const fiber = Effect.runFork(main)
  // The fiber alone does not keep Node's event loop alive.
  const keepAlive = setInterval(() => undefined, 2 ** 31 - 1)
  let stoppedBy: StopSignal | undefined
  const onSignal = (signal: StopSignal) => {
    if (stoppedBy === undefined) {
      stoppedBy = signal
      process.stderr.write(`\n${signal}: stopping (send it again to quit at once)\n`)
      fiber.unsafeInterruptAsFork(fiber.id())
      return
    }
    process.stderr.write(
      `${signal} again: quitting without cleaning up; locks this process held are taken over by the next run, unfinished steps resume\n`
    )
    process.exit(signalExitCode[stoppedBy])
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  fiber.addObserver((exit) => {
    clearInterval(keepAlive)
    if (Exit.isSuccess(exit)) {
      // Exit once the output is flushed; a signal that came too late to interrupt still sets the code.
      process.exitCode = stoppedBy === undefined ? exit.value : signalExitCode[stoppedBy]
      if (stoppedBy !== undefined || exit.value !== 0) process.exit(process.exitCode)
      return
    }
    if (Cause.isInterrupted(exit.cause)) {
      process.stderr.write("interrupted: finished steps are kept; unfinished ones resume on the next run\n")
      return process.exit(signalExitCode[stoppedBy ?? "SIGINT"])
    }
    process.stderr.write(`sardine crashed:\n${Cause.pretty(exit.cause)}\n`)
    process.exit(1)
  })
}
