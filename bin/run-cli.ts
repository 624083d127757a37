import { Command, ValidationError } from "@effect/cli"
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Exit, Layer } from "effect"
import { createRequire } from "node:module"
import { sardine } from "../framework/cli/sardine.ts"
import type { StepImplementations } from "../framework/runner/step-implementations.ts"
import { productionServices } from "./services.ts"

const { version } = createRequire(import.meta.url)("../package.json") as { version: string }

const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === "string" ? error : JSON.stringify(error)

type Services = Layer.Layer.Success<typeof productionServices>

/**
 * Runs the `sardine` command line with the given service layers and maps outcomes to exit codes:
 * 0 ok, 1 failed, 2 usage error, 130 interrupted (Ctrl-C).
 */
export const runCli = <E>(steps: Layer.Layer<StepImplementations, E, Services>) => {
  const main = Command.run(sardine, { name: "sardine", version })(process.argv).pipe(
    Effect.as(0),
    Effect.catchAll((error) =>
      ValidationError.isValidationError(error)
        ? Effect.succeed(2)
        : Effect.sync(() => {
          process.stderr.write(`error: ${messageOf(error)}\n`)
          return 1
        })
    ),
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
