/*
 * A process that holds a tracking spool session until it is killed: it opens its own session in the spool
 * folder given, appends one item, prints "ready" and waits. test/mlflow/tracking-queue.test.ts checks that
 * no other process takes the session over while this one lives, and that one does once it is gone.
 * Usage: node --import tsx <this> <spool folder>
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { openOwnSession } from "../../framework/tracking/spool.ts"

const program = Effect.scoped(Effect.gen(function*() {
  const session = yield* openOwnSession(process.argv[2]!, "http://127.0.0.1:9")
  yield* session.append({ op: "end", run: "held", status: "FINISHED", endTime: 1 })
  yield* Effect.sync(() => process.stdout.write("ready\n"))
  yield* Effect.never
}))

NodeRuntime.runMain(program.pipe(Effect.provide(NodeContext.layer)))
