import { Command, ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Exit, Layer } from "effect"
import { createRequire } from "node:module"
import { DatasetsLive } from "../adapters/data/datasets-live.ts"
import { ImageIOLive } from "../adapters/images/image-io-live.ts"
import { runPushLayer } from "../adapters/mlflow/push.ts"
import { trackerFactoryLayer } from "../adapters/mlflow/tracker-factory.ts"
import { WeightsLive } from "../adapters/safetensors/weights-listing.ts"
import { sardine } from "../framework/cli/sardine.ts"
import { progressFor } from "../framework/runner/progress.ts"
import type { StepImplementations } from "../framework/runner/step-implementations.ts"

const { version } = createRequire(import.meta.url)("../package.json") as { version: string }

const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === "string" ? error : JSON.stringify(error)

/** Every service a command may need, as the composition root provides them. */
export type CliServices = StepImplementations

/**
 * Runs the `sardine` command line with the given service layers and maps outcomes to exit codes:
 * 0 ok, 1 failed, 2 usage error, 130 interrupted (Ctrl-C).
 */
export const runCli = (services: Layer.Layer<CliServices>) => {
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
    Effect.provide(Layer.mergeAll(NodeContext.layer, progressFor(process.stderr), ImageIOLive, DatasetsLive.pipe(Layer.provide(ImageIOLive)), WeightsLive, runPushLayer(), trackerFactoryLayer(), services))
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
