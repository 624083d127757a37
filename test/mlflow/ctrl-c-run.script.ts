/*
 * A program that logs into a tracked run until it is stopped: test/mlflow/local-store.test.ts sends it
 * SIGINT (what Ctrl-C sends) and checks the run ended KILLED. Usage: node --import tsx <this> <mlruns>
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { makeFileStoreTracker } from "../../adapters/mlflow/file-store-tracker.ts"
import { Tracker } from "../../framework/services/tracker.ts"
import { withTrackedRun } from "../../framework/tracking/tracked-run.ts"

const program = Effect.gen(function*() {
  const tracker = yield* makeFileStoreTracker(process.argv[2]!)
  const experimentId = yield* tracker.getOrCreateExperiment("ctrl-c")
  yield* Effect.provideService(
    withTrackedRun({ experimentId, name: "interrupted" }, (run) =>
      Effect.gen(function*() {
        for (let step = 0;; step++) {
          yield* tracker.logMetrics(run.runId, [{ key: "loss", value: 1 / (step + 1), step }])
          if (step === 3) yield* Effect.sync(() => process.stdout.write(`started ${run.runId}\n`))
          yield* Effect.sleep("20 millis")
        }
      })),
    Tracker,
    tracker
  )
})

NodeRuntime.runMain(program)
