import { Effect, Ref, type Scope } from "effect"
import type { TrackerError } from "../../framework/services/tracker.ts"
import type { StampedMetric } from "./log-batch-chunks.ts"
import { MAX_METRICS_PER_BATCH } from "../../framework/tracking/mlflow-limits.ts"

/**
 * Metrics waiting for the server. A training loop logs without waiting for the network; a background fiber
 * sends what is pending, and a point leaves the buffer only once the server has acknowledged it, so a
 * server that restarts mid-run loses nothing (the server ignores a point it already stored, so resending
 * after a lost answer is harmless).
 */
export interface MetricBuffer {
  /** Queues points; waits for a flush only when more than `maxPending` points are pending. */
  readonly add: (runId: string, points: ReadonlyArray<StampedMetric>) => Effect.Effect<void, TrackerError>
  /** Sends everything pending for the run (all runs when absent); fails if some could not be delivered. */
  readonly flush: (runId?: string) => Effect.Effect<void, TrackerError>
}

export interface MetricBufferOptions {
  readonly intervalMs: number
  readonly maxPending: number
  /** How long closing the scope may spend sending what is still pending. */
  readonly closeTimeoutMs: number
}

export const makeMetricBuffer = (
  /** Delivers up to 1000 points of one run; retries transient failures itself. */
  deliver: (runId: string, points: ReadonlyArray<StampedMetric>) => Effect.Effect<void, TrackerError>,
  options: MetricBufferOptions
): Effect.Effect<MetricBuffer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pending = yield* Ref.make(new Map<string, ReadonlyArray<StampedMetric>>())
    // Points the server refused for good (4xx, e.g. a deleted run): dropped, reported by the next flush.
    const refused = yield* Ref.make(new Map<string, TrackerError>())
    const sending = yield* Effect.makeSemaphore(1)

    const takeFront = (runId: string, count: number) =>
      Ref.update(pending, (map) => {
        const next = new Map(map)
        const rest = (map.get(runId) ?? []).slice(count)
        if (rest.length === 0) next.delete(runId)
        else next.set(runId, rest)
        return next
      })

    const drain = (runId: string): Effect.Effect<void, TrackerError> =>
      Effect.gen(function*() {
        while (true) {
          const points = (yield* Ref.get(pending)).get(runId) ?? []
          if (points.length === 0) return
          const batch = points.slice(0, MAX_METRICS_PER_BATCH)
          const result = yield* Effect.either(deliver(runId, batch))
          if (result._tag === "Right") {
            yield* takeFront(runId, batch.length)
          } else if (result.left.status !== undefined && result.left.status >= 400 && result.left.status < 500) {
            yield* takeFront(runId, batch.length)
            yield* Ref.update(refused, (m) => new Map(m).set(runId, result.left))
          } else {
            return yield* Effect.fail(result.left)
          }
        }
      }).pipe(sending.withPermits(1))

    const reportRefused = (runIds: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const map = yield* Ref.get(refused)
        const first = runIds.map((id) => map.get(id)).find((e) => e !== undefined)
        if (first === undefined) return
        yield* Ref.update(refused, (m) => {
          const next = new Map(m)
          for (const id of runIds) next.delete(id)
          return next
        })
        return yield* Effect.fail(first)
      })

    const flush = (runId?: string): Effect.Effect<void, TrackerError> =>
      Effect.gen(function*() {
        const runIds = runId !== undefined
          ? [runId]
          : [...new Set([...(yield* Ref.get(pending)).keys(), ...(yield* Ref.get(refused)).keys()])]
        yield* Effect.forEach(runIds, drain, { discard: true })
        yield* reportRefused(runIds)
      })

    const add = (runId: string, points: ReadonlyArray<StampedMetric>): Effect.Effect<void, TrackerError> =>
      Effect.gen(function*() {
        if (points.length === 0) return
        const map = yield* Ref.updateAndGet(pending, (m) => new Map(m).set(runId, [...(m.get(runId) ?? []), ...points]))
        let total = 0
        for (const list of map.values()) total += list.length
        if (total > options.maxPending) yield* drain(runId)
      })

    // The background sender: a failed round leaves the points pending for the next one.
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.sleep(options.intervalMs).pipe(
          Effect.zipRight(Effect.flatMap(Ref.get(pending), (map) => Effect.forEach([...map.keys()], (id) => Effect.ignore(drain(id)), { discard: true })))
        )
      )
    )
    // Closing the scope (the program ends) sends what is left, so a forgotten flush loses nothing either;
    // bounded, so an unreachable server cannot hold the exit (or a Ctrl-C) for the whole retry budget.
    const lost = (reason: string) =>
      Effect.flatMap(Ref.get(pending), (map) => {
        let left = 0
        for (const list of map.values()) left += list.length
        return left === 0 ? Effect.void : Effect.logError(`${left} metric point(s) could not be sent to MLflow: ${reason}`)
      })
    yield* Effect.addFinalizer(() =>
      flush().pipe(
        Effect.timeoutFail({ duration: options.closeTimeoutMs, onTimeout: () => `no answer within ${options.closeTimeoutMs} ms` }),
        Effect.catchAll((error) => lost(typeof error === "string" ? error : error.message))
      )
    )
    return { add, flush }
  })
