import type { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import { TrackerFactory, type TrackingInputError } from "../services/tracker.ts"
import { claimSessions, type SpoolError, type SpoolSession, spoolFolderOf } from "./spool.ts"
import { makeTrackingQueue } from "./tracking-queue.ts"

export interface SpoolPushResult {
  readonly target: string
  readonly sent: number
  /** Items still in the spool: the store stopped answering. */
  readonly left: number
}

/** How long a push waits for an unreachable store (showing each retry) before it gives up. */
export const pushWithinMs = 30_000

/**
 * Sends what a cache's tracking spool holds (sessions of processes that ended: runs cut short by a dead
 * server, or by Ctrl-C) to the store each session was written for, or to `to`. Sessions of running
 * processes are left to them.
 */
export const pushSpool = (
  cacheDir: string,
  to: string | undefined,
  notify: (line: string) => Effect.Effect<void>
): Effect.Effect<ReadonlyArray<SpoolPushResult>, SpoolError | TrackingInputError, TrackerFactory | FileSystem.FileSystem> =>
  Effect.scoped(Effect.gen(function*() {
    const spoolDir = spoolFolderOf(cacheDir)
    const sessions = yield* claimSessions(spoolDir)
    const byTarget = new Map<string, Array<SpoolSession>>()
    for (const session of sessions) {
      const target = to ?? session.target
      byTarget.set(target, [...(byTarget.get(target) ?? []), session])
    }
    const factory = yield* TrackerFactory
    return yield* Effect.forEach([...byTarget], ([target, earlier]) =>
      Effect.scoped(Effect.gen(function*() {
        const tracker = yield* factory.open(target, { queued: true })
        const queue = yield* makeTrackingQueue({ tracker, earlier, notify, spoolDir, later: "push again once it answers" })
        const total = queue.pending()
        const left = yield* queue.sendAll(pushWithinMs)
        return { target: tracker.target, sent: total - left, left }
      })))
  }))
