import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Option } from "effect"
import { createHash, randomBytes, randomUUID } from "node:crypto"
import { mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { makeRestClient, restConfig } from "../../adapters/mlflow/rest-client.ts"
import { makeRestTracker } from "../../adapters/mlflow/rest-tracker.ts"
import { ParamConflictError, Tracker, TrackerError, TrackingInputError } from "../../framework/services/tracker.ts"
import { withTrackedRun } from "../../framework/tracking/tracked-run.ts"
import { expectStudyOnServer } from "./expect-study.ts"
import { sharedServerUri } from "./mlflow-server.ts"
import { downloadArtifact, getJson, listArtifacts, postJson, readHistory, readRun, searchRuns } from "./read-back.ts"
import { logStudy } from "./study-scenario.ts"

const uri = await sharedServerUri()

const trackerLayer = (server: string) =>
  Layer.scoped(
    Tracker,
    Effect.flatMap(restConfig(server, {}), (config) => makeRestTracker(makeRestClient(config), { metricFlushIntervalMs: 100 }))
  )

const unique = (label: string) => `sardine-test-${label}-${randomUUID().slice(0, 8)}`

describe("REST tracker against a real MLflow server", () => {
  const server = uri as string
  const withTracker = <A, E>(effect: Effect.Effect<A, E, Tracker>) => Effect.provide(effect, trackerLayer(server))

  it.live("creates an experiment once even when several clients race for it", () =>
    Effect.gen(function*() {
      const name = unique("race")
      // Separate trackers: no shared cache, each asks the server.
      const ids = yield* Effect.all(
        Array.from({ length: 6 }, () => withTracker(Effect.flatMap(Tracker, (t) => t.getOrCreateExperiment(name)))),
        { concurrency: "unbounded" }
      )
      expect(new Set(ids).size).toBe(1)
      const found = yield* Effect.promise(() => postJson(server, "experiments/search", { filter: `name = '${name}'`, max_results: 10 }))
      expect(found.experiments.map((e: { experiment_id: string }) => e.experiment_id)).toEqual([ids[0]])
    }))

  it.live("logs a study (parent run, child runs) that reads back whole through the REST API", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-rest-")))
      const study = yield* withTracker(logStudy(unique("study"), dir, `study-${randomUUID().slice(0, 8)}`))
      yield* Effect.promise(() => expectStudyOnServer(server, study))
      const children = yield* Effect.promise(() => searchRuns(server, study.experimentId, `tags.\`mlflow.parentRunId\` = '${study.parent.runId}'`))
      expect(children.map((r) => r.info.run_name).sort()).toEqual(["exp-a", "exp-b"])
      const parent = yield* Effect.promise(() => readRun(server, study.parent.runId))
      expect(parent.info.end_time).toBe(1_790_000_010_000)
      expect(parent.info.start_time).toBe(1_790_000_000_000)
    }))

  it.live("reuses the run recorded under the same key instead of creating a duplicate", () =>
    withTracker(Effect.gen(function*() {
      const tracker = yield* Tracker
      const experimentId = yield* tracker.getOrCreateExperiment(unique("reuse"))
      const key = `study-${randomUUID().slice(0, 8)}`
      const first = yield* tracker.startRun({ experimentId, name: "study", reuseKey: key })
      yield* tracker.logParams(first.runId, { a: "1" })
      yield* tracker.endRun(first.runId, "FINISHED")
      const child = yield* tracker.startRun({ experimentId, name: "exp", reuseKey: "exp-key", parentRunId: first.runId })
      yield* tracker.endRun(child.runId, "FINISHED")

      const again = yield* tracker.startRun({ experimentId, name: "study", reuseKey: key })
      expect([again.runId, again.reused, first.reused]).toEqual([first.runId, true, false])
      expect((yield* Effect.promise(() => readRun(server, again.runId))).info.status).toBe("RUNNING")
      // The same params again are fine (write-once, same value).
      yield* tracker.logParams(again.runId, { a: "1" })
      const childAgain = yield* tracker.startRun({ experimentId, name: "exp", reuseKey: "exp-key", parentRunId: first.runId })
      expect([childAgain.runId, childAgain.reused]).toEqual([child.runId, true])
      // Same experiment key under another parent (a changed study) is a new run.
      const other = yield* tracker.startRun({ experimentId, name: "study2", reuseKey: `${key}-2` })
      const childElsewhere = yield* tracker.startRun({ experimentId, name: "exp", reuseKey: "exp-key", parentRunId: other.runId })
      expect(childElsewhere.reused).toBe(false)
      const all = yield* Effect.promise(() => searchRuns(server, experimentId, ""))
      expect(all.length).toBe(4)
    })))

  it.live("refuses to change a logged param, with a typed error naming it", () =>
    withTracker(Effect.gen(function*() {
      const tracker = yield* Tracker
      const experimentId = yield* tracker.getOrCreateExperiment(unique("params"))
      const run = yield* tracker.startRun({ experimentId, name: "p" })
      yield* tracker.logParams(run.runId, { "unet.rank": "4", "unet.lr": "0.0001" })
      const error = yield* Effect.flip(tracker.logParams(run.runId, { "unet.rank": "8" }))
      expect(error).toBeInstanceOf(ParamConflictError)
      expect(error).toMatchObject({ key: "unet.rank", logged: "4", attempted: "8", runId: run.runId })
      expect((yield* Effect.promise(() => readRun(server, run.runId))).params["unet.rank"]).toBe("4")
    })))

  it.live("chunks params and tags past log-batch's count and 1 MB limits", () =>
    withTracker(Effect.gen(function*() {
      const tracker = yield* Tracker
      const experimentId = yield* tracker.getOrCreateExperiment(unique("chunks"))
      const run = yield* tracker.startRun({ experimentId, name: "chunks" })
      // 300 params of 5999 characters: 1.8 MB, 3× the count limit.
      const params = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`p.${String(i).padStart(3, "0")}`, `${i}`.padEnd(5999, "x")]))
      const tags = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`t.${i}`, "v".repeat(8000)]))
      yield* tracker.logParams(run.runId, params)
      yield* tracker.setTags(run.runId, tags)
      const stored = yield* Effect.promise(() => readRun(server, run.runId))
      expect(stored.params).toEqual(params)
      expect(Object.keys(stored.tags).filter((k) => k.startsWith("t.")).length).toBe(150)
      expect(stored.tags["t.149"]).toBe("v".repeat(8000))
    })))

  it.live("streams a large artifact and logs metrics in batches of 1000", () =>
    withTracker(Effect.gen(function*() {
      const tracker = yield* Tracker
      const experimentId = yield* tracker.getOrCreateExperiment(unique("large"))
      const run = yield* tracker.startRun({ experimentId, name: "large" })
      const dir = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-large-")))
      const bytes = randomBytes(24 * 1024 * 1024)
      yield* Effect.promise(() => writeFile(join(dir, "weights.bin"), bytes))
      yield* tracker.logArtifact(run.runId, join(dir, "weights.bin"), "checkpoints/step-100")
      const points = Array.from({ length: 4321 }, (_, step) => ({ key: "loss", step, value: Math.sin(step), timestamp: 1_700_000_000_000 + step }))
      yield* tracker.logMetrics(run.runId, points)
      yield* tracker.endRun(run.runId, "FINISHED")
      const stored = yield* Effect.promise(() => readRun(server, run.runId))
      const downloaded = yield* Effect.promise(() => downloadArtifact(server, stored.info.artifact_uri, "checkpoints/step-100/weights.bin"))
      const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex")
      expect(sha(downloaded)).toBe(sha(bytes))
      const history = yield* Effect.promise(() => readHistory(server, run.runId, "loss"))
      expect(history).toEqual(points.map(({ step, timestamp, value }) => ({ step, timestamp, value })))
    })))

  it.live("ends a run FINISHED, FAILED or KILLED after what happened inside it", () =>
    withTracker(Effect.gen(function*() {
      const tracker = yield* Tracker
      const experimentId = yield* tracker.getOrCreateExperiment(unique("status"))
      const ok = yield* withTrackedRun({ experimentId, name: "ok" }, (run) => Effect.succeed(run.runId))
      const failed = yield* Effect.flip(withTrackedRun({ experimentId, name: "failed" }, (run) =>
        Effect.zipRight(tracker.logMetrics(run.runId, [{ key: "loss", value: 1, step: 0 }]), Effect.fail(run.runId))))
      // An interruption (what Ctrl-C is to an Effect program) while the run is busy.
      const started = yield* Effect.makeLatch(false)
      let killedId = ""
      const fiber = yield* Effect.fork(withTrackedRun({ experimentId, name: "killed" }, (run) =>
        Effect.zipRight(Effect.sync(() => (killedId = run.runId)), Effect.zipRight(started.open, Effect.never))))
      yield* started.await
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      const statuses = yield* Effect.promise(() =>
        Promise.all([ok, failed, killedId].map((id) =>
          readRun(server, id as string)
        ))
      )
      expect(statuses.map((r) => r.info.status)).toEqual(["FINISHED", "FAILED", "KILLED"])
      // The failed run's metric was flushed before it ended.
      expect(yield* Effect.promise(() => readHistory(server, failed as string, "loss"))).toHaveLength(1)
    })))

  it.live("reports the server's error_code and refuses bad keys before sending", () =>
    withTracker(Effect.gen(function*() {
      const tracker = yield* Tracker
      const missing = yield* Effect.flip(tracker.logParams("0123456789abcdef0123456789abcdef", { a: "1" }))
      expect(missing).toBeInstanceOf(TrackerError)
      expect(missing).toMatchObject({ error_code: "RESOURCE_DOES_NOT_EXIST", status: 404 })
      const experimentId = yield* tracker.getOrCreateExperiment(unique("errors"))
      const run = yield* tracker.startRun({ experimentId, name: "e" })
      const badKey = yield* Effect.flip(tracker.logMetrics(run.runId, [{ key: "loss{unet}", value: 1, step: 0 }]))
      expect(badKey).toBeInstanceOf(TrackingInputError)
      expect(badKey).toMatchObject({ field: "metric key", value: "loss{unet}" })
      const longDigest = yield* Effect.flip(tracker.logInputs(run.runId, [{ name: "d", digest: "x".repeat(64), source: "/d" }]))
      expect(longDigest).toMatchObject({ _tag: "TrackingInputError", field: "dataset \"d\" digest" })
      expect((yield* Effect.promise(() => readRun(server, run.runId))).datasets).toEqual([])
    })))

  it.live("writes an image series the MLflow UI's image view reads", () =>
    withTracker(Effect.gen(function*() {
      const tracker = yield* Tracker
      const experimentId = yield* tracker.getOrCreateExperiment(unique("images"))
      const run = yield* tracker.startRun({ experimentId, name: "img" })
      const dir = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-img-")))
      const { writeScenarioFiles } = yield* Effect.promise(() => import("./study-scenario.ts"))
      const { image, imageFile } = yield* Effect.promise(() => writeScenarioFiles(dir))
      for (const step of [0, 10, 20]) yield* tracker.logImage(run.runId, { key: "sample", step, file: imageFile, timestamp: 1_700_000_000_000 + step })
      const files = yield* Effect.promise(() => listArtifacts(server, run.runId))
      const full = files.filter((f) => f.path.endsWith(".png"))
      expect(full.map((f) => /\+step\+(\d+)\+timestamp\+(\d+)\+/.exec(f.path)!.slice(1)).sort((a, b) => Number(a[0]) - Number(b[0])))
        .toEqual([["0", "1700000000000"], ["10", "1700000000010"], ["20", "1700000000020"]])
      expect(files.filter((f) => f.path.endsWith("+compressed.webp"))).toHaveLength(3)
      const stored = yield* Effect.promise(() => readRun(server, run.runId))
      expect(stored.tags["mlflow.loggedImages"]).toBe("True")
      expect((yield* Effect.promise(() => downloadArtifact(server, stored.info.artifact_uri, full[0]!.path))).equals(image)).toBe(true)
      // The server answers the same listing the UI's image view asks for.
      const listing = yield* Effect.promise(() => getJson(server, "artifacts/list", { run_id: run.runId, path: "images" }))
      expect(listing.files).toHaveLength(6)
      expect(Option.some(listing.root_uri)).toEqual(Option.some(stored.info.artifact_uri))
    })))
})
