import { Clock, Duration, Effect, Either, Exit, Fiber, Option, Queue, Schema, type Scope } from "effect"
import { type ParamConflictError, type Tracker, type TrackerError, type TrackerFileError, TrackingInputError } from "../services/tracker.ts"
import { finishSession, type JournalEntry, type OwnSpoolSession, type SpoolSession } from "./spool.ts"
import type { SpoolItem } from "./spool-item.ts"

/*
 * What stands between a run and its tracking store: steps append what they log to the spool (a local
 * disk write, never a network wait) and a background fiber sends it, in order, to the store. When the
 * store stops answering, the queue pauses — one line says so — and probes it with a backoff; a global
 * budget bounds how long it keeps trying over the whole process. Whatever is not sent when the process
 * ends stays in the spool for the next run or `sardine mlflow push <cache>`.
 */

export interface QueueRetryPolicy {
  /** Delay before the first retry of an unreachable store; it doubles after each failure… */
  readonly initialDelayMs: number
  /** …up to this. */
  readonly maxDelayMs: number
  /** How long the queue keeps retrying an unreachable store, all outages of the process together. */
  readonly budgetMs: number
}

export const defaultQueueRetry: QueueRetryPolicy = { initialDelayMs: 250, maxDelayMs: 30_000, budgetMs: 5 * 60_000 }

/** The store could not be reached (or refused to open a run) while a run waited to start. */
export class TrackingUnavailable extends Schema.TaggedError<TrackingUnavailable>()("TrackingUnavailable", {
  target: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `cannot track to ${this.target}: ${this.reason}`
  }
}

export interface TrackingQueueOptions {
  readonly tracker: Tracker["Type"]
  /** This process's session, which `enqueue` appends to; absent when only sending earlier ones (push). */
  readonly own?: OwnSpoolSession
  /** Sessions earlier processes left unsent, for the same target: sent first, oldest first. */
  readonly earlier: ReadonlyArray<SpoolSession>
  /** Where the queue's messages go (one line each). */
  readonly notify: (line: string) => Effect.Effect<void>
  /** Where unsent items wait, and what sends them later (for messages). */
  readonly spoolDir: string
  readonly later: string
  readonly retry?: QueueRetryPolicy
  /** Closing after an interruption (Ctrl-C) keeps sending at most this long, and only while the store answers. */
  readonly interruptGraceMs?: number
  /** Closing at the end of a run waits for the queue as long as some item is delivered within this. */
  readonly stallMs?: number
}

export interface OpenedRun {
  readonly runId: string
  readonly experimentId: string
}

export interface TrackingQueue {
  /** Where the items go. */
  readonly target: string
  /** Writes an item to the spool (with a copy of `attach`, a file or folder it sends); never waits for the store. */
  readonly enqueue: (item: SpoolItem, attach?: string) => Effect.Effect<void>
  /** The MLflow run behind a run reference, once its `open` item was delivered. */
  readonly runOf: (ref: string) => Option.Option<OpenedRun>
  /**
   * Waits until these runs are open, showing each retry. Fails when the store stays unreachable for
   * `withinMs`, or refuses to open one of them; this process's spool is then discarded (the run did not
   * start), as it is when the wait is interrupted.
   */
  readonly awaitRuns: (refs: ReadonlyArray<string>, withinMs: number) => Effect.Effect<void, TrackingUnavailable>
  /** Sends everything, showing each retry, until done or the store is unreachable for `withinMs`; the items left. */
  readonly sendAll: (withinMs: number) => Effect.Effect<number>
  /** Items not delivered yet. */
  readonly pending: () => number
}

type DeliveryError = TrackerError | TrackingInputError | TrackerFileError | ParamConflictError

/** Worth another try later: the store did not answer, was overloaded, or did not accept the credentials (which a push may fix). */
const isTransient = (error: DeliveryError) => error._tag === "TrackerError" && (error.retryable === true || error.status === 401 || error.status === 403)

interface Group {
  readonly entries: ReadonlyArray<JournalEntry>
  /** Undefined for a line that is not an item. */
  readonly item?: SpoolItem
  readonly bad?: string
}

const maxPointsPerGroup = 1000

/** Consecutive metrics of one run travel as one request. */
const groupsOf = (entries: ReadonlyArray<JournalEntry>): ReadonlyArray<Group> => {
  const groups: Array<{ entries: Array<JournalEntry>; item?: SpoolItem; bad?: string }> = []
  for (const entry of entries) {
    if (Either.isLeft(entry.item)) {
      groups.push({ entries: [entry], bad: entry.item.left })
      continue
    }
    const item = entry.item.right
    const last = groups.at(-1)
    if (
      item.op === "metrics" && last?.item?.op === "metrics" && last.item.run === item.run &&
      last.item.points.length + item.points.length <= maxPointsPerGroup
    ) {
      last.entries.push(entry)
      last.item = { ...last.item, points: [...last.item.points, ...item.points] }
    } else {
      groups.push({ entries: [entry], item })
    }
  }
  return groups
}

const seconds = (ms: number) => `${ms < 10_000 ? (ms / 1000).toFixed(1) : Math.round(ms / 1000)} s`

export const makeTrackingQueue = (options: TrackingQueueOptions): Effect.Effect<TrackingQueue, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { notify, tracker } = options
    const retry = options.retry ?? defaultQueueRetry
    const target = tracker.target
    let sessions: ReadonlyArray<SpoolSession> = [...options.earlier, ...(options.own === undefined ? [] : [options.own])]
    const runs = new Map<string, OpenedRun & { readonly lastSteps: Map<string, number> }>()
    const names = new Map<string, string>()
    /** Runs whose open was refused for good, with why: their other items are left out. */
    const refused = new Map<string, string>()
    const experiments = new Map<string, string>()
    const state = {
      phase: "sending" as "sending" | "paused" | "stopped",
      pausedAt: 0,
      pausedTotalMs: 0,
      attempts: 0,
      reason: "",
      lastProgressAt: yield* Clock.currentTimeMillis,
      /** While a caller waits in the foreground, every retry is shown; otherwise only pause and resume. */
      announce: false,
      spoolFailures: 0
    }
    const wake = yield* Queue.sliding<void>(1)
    // Runs that earlier processes opened in this store: what is left of their sessions goes to the same runs.
    for (const session of sessions) {
      for (const [ref, run] of session.openedRuns()) {
        if (run.target === target) runs.set(ref, { runId: run.runId, experimentId: run.experimentId, lastSteps: new Map() })
      }
    }

    const pending = () => sessions.reduce((n, s) => n + s.counts().written - s.counts().sent, 0)
    const runName = (ref: string) => names.get(ref) ?? ref

    const describe = (item: SpoolItem): string => {
      switch (item.op) {
        case "open":
          return `run ${item.name}`
        case "metrics":
          return `${item.points.length} metric point(s) of run ${runName(item.run)}`
        case "image":
          return `image ${item.key} step ${item.step} of run ${runName(item.run)}`
        case "artifact":
          return `artifact ${item.artifactPath === "" ? item.path.split("/").at(-1) : item.artifactPath} of run ${runName(item.run)}`
        case "inputs":
          return `dataset ${item.inputs.map((i) => i.name).join(", ")} of run ${runName(item.run)}`
        case "end":
          return `the end (${item.status}) of run ${runName(item.run)}`
      }
    }

    const experimentIdOf = (name: string) =>
      Effect.gen(function*() {
        const known = experiments.get(name)
        if (known !== undefined) return known
        const id = yield* tracker.getOrCreateExperiment(name)
        experiments.set(name, id)
        return id
      })

    /**
     * The run behind a reference. One that no process recorded opening in this store was opened by an
     * earlier attempt at this session in another store (a push `--to` elsewhere): it is opened here.
     */
    const resolve = (ref: string, session: SpoolSession) =>
      Effect.gen(function*() {
        if (!runs.has(ref) && !refused.has(ref)) {
          const open = yield* session.deliveredOpen(ref).pipe(
            Effect.catchAll((error) => Effect.as(notify(`tracking: ${error.message}`), Option.none<SpoolItem>()))
          )
          if (Option.isSome(open)) yield* deliver(open.value, session)
        }
        return runs.get(ref)
      })

    /** Sends one item. One of a run that could not be opened is left out (its open was reported). */
    const deliver = (item: SpoolItem, session: SpoolSession): Effect.Effect<void, DeliveryError> =>
      Effect.gen(function*() {
        if (item.op === "open") {
          names.set(item.run, item.name)
          const parent = item.parent === undefined ? undefined : yield* resolve(item.parent, session)
          if (item.parent !== undefined && parent === undefined) {
            return yield* Effect.fail(new TrackingInputError({ field: "parent run", value: runName(item.parent), rule: "could not be opened" }))
          }
          const experimentId = yield* experimentIdOf(item.experiment)
          const run = yield* tracker.startRun({
            experimentId,
            name: item.name,
            reuseKey: item.reuseKey,
            ...(item.rerun === true ? { rerun: true } : {}),
            tags: item.tags,
            ...(parent === undefined ? {} : { parentRunId: parent.runId })
          })
          yield* tracker.logParams(run.runId, item.params)
          runs.set(item.run, { runId: run.runId, experimentId, lastSteps: new Map(Object.entries(run.latestSteps ?? {})) })
          refused.delete(item.run)
          yield* session.recordRun(item.run, { target, runId: run.runId, experimentId }).pipe(
            Effect.catchAll((error) => notify(`tracking: ${error.message}`))
          )
          return
        }
        const run = yield* resolve(item.run, session)
        if (run === undefined) return
        switch (item.op) {
          case "metrics": {
            // A resumed step repeats the steps after its checkpoint: the run has them already.
            const last = new Map(run.lastSteps)
            const fresh = item.points.filter((p) => {
              if (p.step <= (last.get(p.key) ?? -Infinity)) return false
              last.set(p.key, p.step)
              return true
            })
            if (fresh.length === 0) return
            yield* tracker.logMetrics(run.runId, fresh)
            yield* tracker.flush(run.runId)
            for (const [key, step] of last) run.lastSteps.set(key, step)
            return
          }
          case "image":
            yield* tracker.logImage(run.runId, { key: item.key, step: item.step, file: session.fileOf(item.file), timestamp: item.timestamp, id: item.id })
            return
          case "artifact":
            yield* tracker.logArtifact(run.runId, session.fileOf(item.path), item.artifactPath)
            return
          case "inputs":
            yield* tracker.logInputs(run.runId, item.inputs)
            return
          case "end":
            yield* tracker.endRun(run.runId, item.status, item.endTime)
            return
        }
      })

    /** Delivers a group, retrying while the store is unreachable; `false` once the retry budget is spent. */
    const deliverWithRetry = (group: Group, session: SpoolSession): Effect.Effect<boolean> =>
      Effect.gen(function*() {
        if (group.item === undefined) {
          yield* notify(`tracking: ${session.dir}/items.jsonl line ${group.entries[0]!.n + 1} is not an item (${group.bad}); left out`)
          return true
        }
        const item = group.item
        while (true) {
          const result = yield* Effect.either(deliver(item, session))
          const now = yield* Clock.currentTimeMillis
          if (Either.isRight(result)) {
            if (state.phase === "paused") {
              state.pausedTotalMs += now - state.pausedAt
              yield* notify(`MLflow at ${target} answers again: tracking resumed (${pending()} item(s) queued)`)
            }
            state.phase = "sending"
            state.attempts = 0
            state.lastProgressAt = now
            return true
          }
          const error = result.left
          if (!isTransient(error)) {
            if (item.op === "open") refused.set(item.run, error.message)
            yield* notify(`MLflow: could not log ${describe(item)}: ${error.message}; left out`)
            state.lastProgressAt = now
            return true
          }
          // Transient errors are the store's (TrackerError): what went wrong, without which request it was.
          const reason = error._tag === "TrackerError" ? error.reason : error.message
          if (state.phase === "sending") {
            state.phase = "paused"
            state.pausedAt = now
            state.attempts = 0
            if (!state.announce) {
              yield* notify(
                `MLflow at ${target} unreachable (${reason}): tracking paused, ${pending()} item(s) queued; ` +
                  `the run goes on, and what is queued waits in ${options.spoolDir}`
              )
            }
          }
          state.attempts++
          state.reason = reason
          const delay = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (state.attempts - 1))
          if (state.pausedTotalMs + (now - state.pausedAt) + delay > retry.budgetMs) {
            state.pausedTotalMs += now - state.pausedAt
            state.pausedAt = now
            state.phase = "stopped"
            yield* notify(
              `MLflow at ${target} still unreachable after ${seconds(state.pausedTotalMs)} of retries: tracking stopped for this process; ` +
                `${pending()} item(s) wait in ${options.spoolDir}: ${options.later}`
            )
            return false
          }
          if (state.announce) yield* notify(`MLflow at ${target} unreachable (${reason}); retry ${state.attempts} in ${seconds(delay)}`)
          yield* Effect.sleep(Duration.millis(delay))
        }
      })

    const nextBatch = Effect.gen(function*() {
      for (const session of sessions) {
        const { sent, written } = session.counts()
        if (sent < written) return { session, entries: yield* session.read(Math.min(200, written - sent)) }
      }
      return undefined
    })

    const drain = Effect.gen(function*() {
      let unreadable = false
      while (true) {
        const batch = yield* Effect.either(nextBatch)
        if (Either.isLeft(batch)) {
          if (!unreadable) yield* notify(`tracking: ${batch.left.message}; trying again every 5 s`)
          unreadable = true
          yield* Effect.sleep(Duration.seconds(5))
          continue
        }
        unreadable = false
        if (batch.right === undefined || batch.right.entries.length === 0) {
          yield* Queue.take(wake)
          continue
        }
        const { entries, session } = batch.right
        for (const group of groupsOf(entries)) {
          if (!(yield* deliverWithRetry(group, session))) return
          const acked = yield* Effect.either(session.ack(group.entries))
          if (Either.isLeft(acked)) yield* notify(`tracking: ${acked.left.message}`)
        }
        if (session !== options.own && session.counts().sent === session.counts().written) {
          yield* finishSession(session)
          sessions = sessions.filter((s) => s !== session)
        }
      }
    })

    const earlierCount = pending() - (options.own === undefined ? 0 : options.own.counts().written - options.own.counts().sent)
    if (earlierCount > 0) yield* notify(`sending ${earlierCount} tracking item(s) that earlier runs left in ${options.spoolDir} to ${target}`)
    const drainer = yield* Effect.forkScoped(drain)

    /** Closing: waits for what is queued while the store answers, then leaves the rest in the spool. */
    yield* Effect.addFinalizer((exit) =>
      Effect.gen(function*() {
        state.announce = false
        const interrupted = Exit.isInterrupted(exit)
        const started = yield* Clock.currentTimeMillis
        const grace = options.interruptGraceMs ?? 2000
        const stall = options.stallMs ?? 30_000
        let told = false
        while (pending() > 0 && state.phase === "sending") {
          const now = yield* Clock.currentTimeMillis
          // A stall counts from the close at the earliest: a queue idle for long (a SLURM submitter, whose jobs
          // log for themselves) still sends what it is given at the end.
          if (interrupted ? now - started >= grace : now - Math.max(state.lastProgressAt, started) >= stall) break
          if (!told && now - started >= 2000) {
            told = true
            yield* notify(`sending ${pending()} queued tracking item(s) to ${target}…`)
          }
          yield* Effect.sleep(Duration.millis(50))
        }
        yield* Fiber.interrupt(drainer)
        for (const session of sessions) if (session !== options.own) yield* finishSession(session)
        const left = pending()
        if (left > 0) yield* notify(`${left} tracking item(s) not sent to ${target}: they wait in ${options.spoolDir}; ${options.later}`)
        if (state.spoolFailures > 0) yield* notify(`${state.spoolFailures} tracking item(s) could not be written to the spool and are lost`)
      })
    )

    const enqueue: TrackingQueue["enqueue"] = (item, attach) =>
      options.own === undefined ? Effect.void : options.own.append(item, attach).pipe(
        Effect.zipRight(Queue.offer(wake, undefined)),
        Effect.asVoid,
        Effect.catchAll((error) =>
          Effect.suspend(() => {
            state.spoolFailures++
            return state.spoolFailures === 1 ? notify(`tracking: ${error.message}; what cannot be spooled is not tracked`) : Effect.void
          })
        )
      )

    /** The run did not start: nothing it queued is to be sent, now or later. */
    const discardOwn = Effect.suspend(() => {
      state.announce = false
      const own = options.own
      if (own === undefined) return Effect.void
      sessions = sessions.filter((s) => s !== own)
      return own.discard
    })

    const unavailable = (reason: string) => Effect.zipRight(discardOwn, Effect.fail(new TrackingUnavailable({ target, reason })))

    const awaitRuns: TrackingQueue["awaitRuns"] = (refs, withinMs) =>
      Effect.gen(function*() {
        state.announce = true
        while (true) {
          const bad = refs.find((r) => refused.has(r))
          if (bad !== undefined) return yield* unavailable(`the store refused to open run ${runName(bad)}: ${refused.get(bad)}`)
          if (refs.every((r) => runs.has(r))) {
            state.announce = false
            return
          }
          const now = yield* Clock.currentTimeMillis
          if (state.phase === "stopped" || (state.phase === "paused" && now - state.pausedAt >= withinMs)) {
            return yield* unavailable(`unreachable (${state.reason}; ${state.attempts} attempt(s) in ${seconds(now - state.pausedAt)})`)
          }
          yield* Effect.sleep(Duration.millis(50))
        }
      }).pipe(Effect.onInterrupt(() => discardOwn))

    const sendAll: TrackingQueue["sendAll"] = (withinMs) =>
      Effect.gen(function*() {
        state.announce = true
        while (pending() > 0 && state.phase !== "stopped") {
          if (state.phase === "paused" && (yield* Clock.currentTimeMillis) - state.pausedAt >= withinMs) break
          yield* Effect.sleep(Duration.millis(50))
        }
        state.announce = false
        return pending()
      })

    return {
      target,
      enqueue,
      runOf: (ref) => Option.fromNullable(runs.get(ref)).pipe(Option.map(({ experimentId, runId }) => ({ runId, experimentId }))),
      awaitRuns,
      sendAll,
      pending
    }
  })
