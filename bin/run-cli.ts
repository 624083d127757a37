import { CliConfig, Command, CommandDescriptor, ValidationError } from "@effect/cli"
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Either, Exit, Layer } from "effect"
import { createRequire } from "node:module"
import { sardine } from "../framework/cli/sardine.ts"
import { commandShape, type UsageProblem, usageErrorLines } from "../framework/cli/usage-errors.ts"
import type { StepImplementations } from "../framework/runner/step-implementations.ts"
import { productionServices } from "./services.ts"

const { version } = createRequire(import.meta.url)("../package.json") as { version: string }

const messageOf = (error: unknown): string => error instanceof Error ? error.message : typeof error === "string" ? error : JSON.stringify(error)

type Services = Layer.Layer.Success<typeof productionServices>

/** Prints a usage error in a few lines (see usage-errors.ts); the exit code is 2. */
const usageError = (args: ReadonlyArray<string>, problem: UsageProblem) =>
  Effect.sync(() => {
    process.stderr.write(`${usageErrorLines(commandShape(sardine.descriptor), args, problem).join("\n")}\n`)
    return 2
  })

/**
 * Runs the `sardine` command line with the given service layers and maps outcomes to exit codes:
 * 0 ok, 1 failed, 2 usage error, 130 interrupted (Ctrl-C).
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
  NodeRuntime.runMain(main, {
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      if (Exit.isSuccess(exit)) return onExit(exit.value as number)
      if (Cause.isInterruptedOnly(exit.cause)) {
        process.stderr.write("interrupted: finished steps are kept; unfinished ones resume on the next run\n")
        return onExit(130)
      }
      process.stderr.write(`sardine crashed:\n${Cause.pretty(exit.cause)}\n`)
      return onExit(1)
    }
  })
}
