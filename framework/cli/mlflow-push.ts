import { Args, Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Config, type ConfigError, Console, Effect, Option, Schema } from "effect"
import { join } from "node:path"
import { RunPush, type TrackerFactory } from "../services/tracker.ts"
import { spoolFolderOf } from "../tracking/spool.ts"
import { pushSpool } from "../tracking/spool-push.ts"

/**
 * `sardine mlflow push <folder> [--to <uri>]` sends what is local to a tracking server. One command for both
 * kinds of local tracking, because the user's question is the same ("send what did not reach the server"):
 *   - an MLflow folder (what sardine writes without a server): its runs are replayed; pushing again creates
 *     nothing new (each server run records the local run it came from, and unchanged runs are skipped);
 *   - a sardine cache folder: its tracking spool (what runs logged while their server was unreachable, or
 *     cut short by Ctrl-C) is sent to the server each run logged to, or to --to.
 */

export class NothingPushed extends Schema.TaggedError<NothingPushed>()("NothingPushed", {
  folder: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.folder}: ${this.reason}`
  }
}

const folder = Args.directory({ name: "folder", exists: "yes" }).pipe(
  Args.withDescription("A local MLflow folder (./mlruns), or a sardine cache folder (its tracking spool)")
)

const to = Options.text("to").pipe(
  Options.optional,
  Options.withDescription(
    "The tracking server (http:// or https://). For an MLflow folder it defaults to MLFLOW_TRACKING_URI; " +
      "for a cache, to the server each spooled run was logged to. " +
      "Credentials come from MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN."
  )
)

const quiet = Options.boolean("quiet").pipe(Options.withDescription("Print only the summary"))

const isCache = (dir: string): Effect.Effect<boolean, PlatformError, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => Effect.zipWith(fs.exists(join(dir, "tracking")), fs.exists(join(dir, "steps")), (a, b) => a || b))

const pushFolder = (source: string, to: Option.Option<string>, quiet: boolean): Effect.Effect<
  void,
  Effect.Effect.Error<ReturnType<RunPush["Type"]["push"]>> | NothingPushed | ConfigError.ConfigError,
  RunPush
> =>
  Effect.gen(function*() {
    const target = Option.isSome(to) ? to.value : Option.getOrUndefined(yield* Config.option(Config.string("MLFLOW_TRACKING_URI")))
    if (target === undefined) {
      return yield* Effect.fail(new NothingPushed({ folder: source, reason: "which server? Give --to http://… or set MLFLOW_TRACKING_URI" }))
    }
    const pusher = yield* RunPush
    const summary = yield* pusher.push(source, target, quiet ? () => Effect.void : (line) => Console.log(`  ${line}`))
    yield* Console.log(
      `pushed ${source} to ${summary.target}: ${summary.created} run(s) created, ${summary.updated} updated, ` +
        `${summary.unchanged} unchanged, in ${summary.experiments} experiment(s)`
    )
  })

const pushCache = (cacheDir: string, to: Option.Option<string>, quiet: boolean): Effect.Effect<
  void,
  Effect.Effect.Error<ReturnType<typeof pushSpool>> | NothingPushed,
  TrackerFactory | FileSystem.FileSystem
> =>
  Effect.gen(function*() {
    const results = yield* pushSpool(cacheDir, Option.getOrUndefined(to), quiet ? () => Effect.void : (line) => Console.error(line))
    if (results.length === 0) {
      yield* Console.log(`nothing to send: the tracking spool of ${cacheDir} is empty (or belongs to runs still going)`)
      return
    }
    for (const r of results) yield* Console.log(`pushed the tracking spool of ${cacheDir} to ${r.target}: ${r.sent} item(s) sent, ${r.left} left`)
    const left = results.filter((r) => r.left > 0)
    if (left.length > 0) {
      return yield* Effect.fail(
        new NothingPushed({
          folder: spoolFolderOf(cacheDir),
          reason: `${left.map((r) => `${r.left} item(s) for ${r.target}`).join(", ")} could not be sent and stay here; push again once the server answers`
        })
      )
    }
  })

export const mlflowPushCommand = Command.make("push", { folder, to, quiet }, ({ folder, quiet, to }) =>
  Effect.suspend((): Effect.Effect<
    void,
    Effect.Effect.Error<ReturnType<typeof pushCache>> | Effect.Effect.Error<ReturnType<typeof pushFolder>> | PlatformError,
    RunPush | TrackerFactory | FileSystem.FileSystem
  > =>
    Effect.gen(function*() {
      if (yield* isCache(folder)) yield* pushCache(folder, to, quiet)
      else yield* pushFolder(folder, to, quiet)
    })
  )).pipe(
    Command.withDescription(
      "Send local tracking to a server: the runs of a local MLflow folder (replayed without duplicates), " +
        "or the tracking spool of a sardine cache (what runs logged while their server was unreachable)."
    )
  )

export const mlflowCommand = Command.make("mlflow").pipe(
  Command.withDescription("Work with MLflow tracking data."),
  Command.withSubcommands([mlflowPushCommand])
)
