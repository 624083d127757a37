import { describe, expect, it } from "@effect/vitest"
import { NodeContext } from "@effect/platform-node"
import { Effect, Either, Option } from "effect"
import { randomUUID } from "node:crypto"
import { mkdtemp, readdir, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { trackerFactoryLayer } from "../../adapters/mlflow/tracker-factory.ts"
import { TrackerFactory } from "../../framework/services/tracker.ts"
import { claimSessions, openOwnSession } from "../../framework/tracking/spool.ts"
import { spoolBacklog } from "../../framework/tracking/spool-backlog.ts"
import { parseSpoolLine, spoolLine } from "../../framework/tracking/spool-item.ts"
import { makeTrackingQueue } from "../../framework/tracking/tracking-queue.ts"
import { repoRoot, start } from "../support/run-process.ts"
import { freePort } from "./server-process.ts"
import { sharedServerUri } from "./mlflow-server.ts"
import { readHistory } from "./read-back.ts"

/*
 * The tracking queue and its spool (framework/tracking/), in process: a real MLflow server (the shared one),
 * a real closed port, real spool files, real processes holding sessions. Each test takes a second or two.
 */

const uri = await sharedServerUri()

const tempSpool = () => Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-spool-"))).pipe(Effect.map((dir) => join(dir, "spool")))

/** A queue with its own session in `spoolDir`, writing its messages to `lines`. */
const queueFor = (target: string, spoolDir: string, lines: Array<string>, retry = { initialDelayMs: 50, maxDelayMs: 100, budgetMs: 600 }) =>
  Effect.gen(function*() {
    const tracker = yield* (yield* TrackerFactory).open(target, { queued: true })
    const own = yield* openOwnSession(spoolDir, tracker.target)
    const queue = yield* makeTrackingQueue({
      tracker,
      own,
      earlier: [],
      notify: (line) => Effect.sync(() => lines.push(line)),
      spoolDir,
      later: "push them",
      retry
    })
    return { queue, own }
  })

describe("the tracking spool", () => {
  it.effect("says what its sessions did not send, by store: items, bytes (attached files included), run names, since when", () =>
    Effect.gen(function*() {
      const spoolDir = yield* tempSpool()
      const image = join(spoolDir, "..", "sample.png")
      yield* Effect.promise(() => writeFile(image, new Uint8Array(200_000)))
      const metrics = (run: string, step: number) => ({ op: "metrics" as const, run, points: [{ key: "loss", value: 0.5, step, timestamp: 1 }] })
      // A process that logged to a store that never answered: a run opened, two metric items and an image.
      const dead = yield* Effect.scoped(Effect.gen(function*() {
        const own = yield* openOwnSession(spoolDir, "http://gone:5000")
        yield* own.append({ op: "open", run: "r1", experiment: "e", name: "tiny", reuseKey: "r1", tags: {}, params: {} })
        yield* own.append(metrics("r1", 1))
        yield* own.append(metrics("r1", 2))
        yield* own.append({ op: "image", run: "r1", key: "sample", step: 0, timestamp: 1, id: "i", file: "" }, image)
        return own.createdAt
      }))
      // A later one for another store, whose first item was delivered.
      yield* Effect.scoped(Effect.gen(function*() {
        const own = yield* openOwnSession(spoolDir, "/elsewhere/mlruns")
        yield* own.append({ op: "open", run: "r2", experiment: "e", name: "other", reuseKey: "r2", tags: {}, params: {} })
        yield* own.append(metrics("r2", 1))
        yield* own.ack(yield* own.read(1))
      }))
      const backlog = yield* spoolBacklog(spoolDir)
      expect(backlog.map(({ bytes: _, ...b }) => b)).toEqual([
        { target: "http://gone:5000", items: 4, runs: ["tiny"], since: dead },
        { target: "/elsewhere/mlruns", items: 1, runs: ["other"], since: expect.any(String) }
      ])
      expect(backlog[0]!.bytes).toBeGreaterThan(200_000)
      expect(backlog[1]!.bytes).toBeLessThan(1_000)
    }).pipe(Effect.provide(NodeContext.layer)))

  it("keeps NaN and ±Infinity metric values, and reads a line cut short as no item", () => {
    const item = { op: "metrics" as const, run: "r", points: [NaN, Infinity, -Infinity, 0.5].map((value, step) => ({ key: "m", value, step, timestamp: 7 })) }
    const line = spoolLine(item)
    expect(line).not.toContain("null")
    const back = parseSpoolLine(line)
    expect(Either.isRight(back) && back.right.op === "metrics" ? back.right.points.map((p) => p.value) : []).toEqual([NaN, Infinity, -Infinity, 0.5])
    expect(Either.isLeft(parseSpoolLine(line.slice(0, -5)))).toBe(true)
  })

  it.live("is taken over, and said to wait, only once the process that wrote it is gone", () =>
    Effect.gen(function*() {
      const spoolDir = yield* tempSpool()
      const holder = start(`${repoRoot}/test/mlflow/spool-holder.script.ts`, [spoolDir])
      yield* Effect.promise(async () => {
        while (!holder.output().includes("ready")) await new Promise((r) => setTimeout(r, 20))
      })
      expect(yield* Effect.scoped(claimSessions(spoolDir))).toHaveLength(0)
      // Nor is it said to wait: its process sends it (another worker of the same run, say).
      expect(yield* spoolBacklog(spoolDir)).toEqual([])
      holder.child.kill("SIGKILL")
      yield* Effect.promise(() => holder.done)
      expect((yield* spoolBacklog(spoolDir)).map((b) => b.items)).toEqual([1])
      const taken = yield* Effect.scoped(Effect.map(claimSessions(spoolDir), (sessions) => sessions.map((s) => s.counts())))
      expect(taken).toEqual([{ written: 1, sent: 0 }])
      // Renamed to this process's name, so a third process would leave it alone while this one lives.
      expect((yield* Effect.promise(() => readdir(spoolDir)))[0]).toMatch(new RegExp(`~${process.pid}~`))
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("the tracking queue", () => {
  it.live("does not wait for an unreachable store: one line says tracking paused, the global budget ends the retries, the spool keeps all", () =>
    Effect.gen(function*() {
      const spoolDir = yield* tempSpool()
      const lines: Array<string> = []
      const target = `http://127.0.0.1:${yield* Effect.promise(freePort)}`
      const own = yield* Effect.scoped(Effect.gen(function*() {
        const { own, queue } = yield* queueFor(target, spoolDir, lines)
        yield* queue.enqueue({ op: "open", run: "r", experiment: "e", name: "n", reuseKey: "k", tags: {}, params: {} })
        for (let step = 1; step <= 100; step++) {
          yield* queue.enqueue({ op: "metrics", run: "r", points: [{ key: "loss", value: 1 / step, step, timestamp: step }] })
        }
        // The retry budget (0.6 s) runs out: the queue gives up for this process.
        while (!lines.some((l) => l.includes("tracking stopped for this process"))) yield* Effect.sleep("50 millis")
        expect(queue.pending()).toBe(101)
        return own
      })).pipe(Effect.provide(trackerFactoryLayer()))
      expect(lines.filter((l) => l.includes("tracking paused"))).toEqual([
        expect.stringMatching(new RegExp(`^MLflow at ${target} unreachable \\(.*ECONNREFUSED.*\\): tracking paused, \\d+ item\\(s\\) queued`))
      ])
      expect(lines.filter((l) => l.includes("tracking stopped for this process"))).toHaveLength(1)
      expect(lines.at(-1)).toBe(`101 tracking item(s) not sent to ${target}: they wait in ${spoolDir}; push them`)
      // The session stays, closed, for the next process.
      const [left] = yield* Effect.scoped(Effect.map(claimSessions(spoolDir), (sessions) => sessions.map((s) => s.counts())))
      expect(left).toEqual({ written: 101, sent: 0 })
      expect(own.dir).not.toBe("")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("sends a resumed step's points only after the last step its run holds", () =>
    Effect.gen(function*() {
      const server = uri
      const reuseKey = `resume-${randomUUID().slice(0, 8)}`
      const open = { op: "open" as const, run: reuseKey, experiment: `sardine-test-${reuseKey}`, name: "resumed", reuseKey, tags: {}, params: { a: "1" } }
      const loss = (from: number, to: number) =>
        Array.from({ length: to - from + 1 }, (_, i) => ({ key: "loss", value: 1 / (from + i), step: from + i, timestamp: 1000 + from + i }))
      const session = (points: ReturnType<typeof loss>) =>
        Effect.scoped(Effect.gen(function*() {
          const { queue } = yield* queueFor(server, yield* tempSpool(), [])
          yield* queue.enqueue(open)
          for (const p of points) yield* queue.enqueue({ op: "metrics", run: reuseKey, points: [p] })
          yield* queue.enqueue({ op: "end", run: reuseKey, status: "FINISHED", endTime: 5000 })
          yield* queue.awaitRuns([reuseKey], 30_000)
          return Option.getOrThrow(queue.runOf(reuseKey)).runId
        })).pipe(Effect.provide(trackerFactoryLayer()))
      // Killed after step 12, resumed from the checkpoint at 10: steps 11 and 12 come again, with new timestamps.
      const first = yield* session(loss(1, 12))
      const second = yield* session(loss(11, 20).map((p) => ({ ...p, timestamp: p.timestamp + 100 })))
      expect(second).toBe(first)
      const history = yield* Effect.promise(() => readHistory(server, first, "loss"))
      expect(history.map((p) => p.step)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    }).pipe(Effect.provide(NodeContext.layer)))
})
