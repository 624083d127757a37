import { Cause, Effect, Exit } from "effect"
import { Tracker, type RunEndStatus, type StartRunOptions, type TrackedRun, type TrackerError, type TrackingInputError } from "../services/tracker.ts"

/** Success ends a run FINISHED, an interruption (Ctrl-C) KILLED, anything else FAILED. */
export const endStatusOf = (exit: Exit.Exit<unknown, unknown>): RunEndStatus =>
  Exit.isSuccess(exit) ? "FINISHED" : Cause.isInterruptedOnly(exit.cause) ? "KILLED" : "FAILED"

/**
 * Runs `use` inside a tracked run and always ends the run with the status its outcome deserves, even when
 * `use` fails or is interrupted. A failure to end the run is reported but never hides `use`'s own outcome.
 */
export const withTrackedRun = <A, E, R>(
  options: StartRunOptions,
  use: (run: TrackedRun) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | TrackerError | TrackingInputError, R | Tracker> =>
  Effect.flatMap(Tracker, (tracker) =>
    Effect.acquireUseRelease(
      tracker.startRun(options),
      use,
      (run, exit) =>
        tracker.endRun(run.runId, endStatusOf(exit)).pipe(
          Effect.catchAll((error) => Effect.logWarning(`could not end MLflow run ${run.runId}: ${error.message}`))
        )
    ))

/** Tags of a replicate's run: which training seed of how many (1-based; replicates.ts derives the seeds). */
export const SARDINE_REPLICATE = "sardine.replicate"
export const SARDINE_REPLICATES = "sardine.replicates"
export const replicateTags = (replicate: number, replicates: number): Record<string, string> => ({
  [SARDINE_REPLICATE]: String(replicate),
  [SARDINE_REPLICATES]: String(replicates)
})
