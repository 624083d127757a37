import { Args, Command, Options } from "@effect/cli"
import { Config, Console, Effect } from "effect"
import { RunPush } from "../services/tracker.ts"

/**
 * `sardine mlflow push <mlruns-dir> --to <uri>`: replays the runs of a local MLflow folder (what sardine
 * writes without a tracking server) into a server. Pushing again creates nothing new: each server run
 * records the local run it came from, and unchanged runs are skipped.
 */

const source = Args.directory({ name: "mlruns-dir", exists: "yes" }).pipe(
  Args.withDescription("The local MLflow folder (./mlruns)")
)

const to = Options.text("to").pipe(
  Options.withFallbackConfig(Config.string("MLFLOW_TRACKING_URI")),
  Options.withDescription("The tracking server (http:// or https://); defaults to MLFLOW_TRACKING_URI. " +
    "Credentials come from MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN.")
)

const quiet = Options.boolean("quiet").pipe(Options.withDescription("Print only the summary"))

export const mlflowPushCommand = Command.make("push", { source, to, quiet }, ({ quiet, source, to }) =>
  Effect.gen(function*() {
    const pusher = yield* RunPush
    const summary = yield* pusher.push(source, to, quiet ? () => Effect.void : (line) => Console.log(`  ${line}`))
    yield* Console.log(
      `pushed ${source} to ${summary.target}: ${summary.created} run(s) created, ${summary.updated} updated, ` +
        `${summary.unchanged} unchanged, in ${summary.experiments} experiment(s)`
    )
  })).pipe(Command.withDescription("Replay the runs of a local MLflow folder into a tracking server, without duplicating them."))

export const mlflowCommand = Command.make("mlflow").pipe(
  Command.withDescription("Work with MLflow tracking data."),
  Command.withSubcommands([mlflowPushCommand])
)
