import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { execFile, spawn } from "node:child_process"
import { appendFile, mkdtemp, readdir, readFile, symlink, unlink, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { makeFileStoreTracker } from "../../adapters/mlflow/file-store-tracker.ts"
import { ParamConflictError, Tracker } from "../../framework/services/tracker.ts"
import { mlflowPython, repo, requireMlflowVenv } from "./mlflow-server.ts"
import { type LoggedRun, type LoggedStudy, logStudy } from "./study-scenario.ts"

const run = promisify(execFile)

const storeLayer = (root: string) => Layer.effect(Tracker, makeFileStoreTracker(root))

const nonFinite = (v: number) => (Number.isNaN(v) ? "NaN" : v === Infinity ? "Infinity" : v === -Infinity ? "-Infinity" : v)

/** What tools/check_local_store.py must find for each run. */
const expectation = (experimentName: string, study: LoggedStudy) => ({
  runs: [study.parent, ...study.children].map((r: LoggedRun) => ({
    run_id: r.runId,
    experiment_name: experimentName,
    name: r.name,
    status: r.status,
    parent_run_id: r.parentRunId ?? null,
    params: r.params,
    tags: r.tags,
    metrics: Object.fromEntries(Object.entries(r.metrics).map(([k, points]) => [k, points.map((p) => [p.step, p.timestamp, nonFinite(p.value)])])),
    datasets: [...r.datasets].sort((a, b) => a.name.localeCompare(b.name)).map((d) => ({
      name: d.name,
      digest: d.digest,
      source_type: d.source.startsWith("http") ? "http" : "local",
      source: JSON.stringify(d.source.startsWith("http") ? { url: d.source } : { uri: d.source }),
      context: d.context
    }))
  }))
})

const checkStore = (store: string, expectedFile?: string) =>
  run(mlflowPython, [join(repo, "tools/check_local_store.py"), store, ...(expectedFile === undefined ? [] : ["--expect", expectedFile])], {
    maxBuffer: 64 * 1024 * 1024
  })

describe("local store (MLflow file-store layout)", () => {
  it.live("refuses to change a param and reuses a run by key", () =>
    Effect.gen(function*() {
      const root = join(yield* Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-store-"))), "mlruns")
      yield* Effect.provide(
        Effect.gen(function*() {
          const tracker = yield* Tracker
          const experimentId = yield* tracker.getOrCreateExperiment("local")
          expect(yield* tracker.getOrCreateExperiment("local")).toBe(experimentId)
          const first = yield* tracker.startRun({ experimentId, name: "study", reuseKey: "k1" })
          yield* tracker.logParams(first.runId, { rank: "4" })
          yield* tracker.logParams(first.runId, { rank: "4" })
          const conflict = yield* Effect.flip(tracker.logParams(first.runId, { rank: "8" }))
          expect(conflict).toBeInstanceOf(ParamConflictError)
          expect(conflict).toMatchObject({ key: "rank", logged: "4", attempted: "8" })
          yield* tracker.endRun(first.runId, "FINISHED")
          const again = yield* tracker.startRun({ experimentId, name: "study", reuseKey: "k1" })
          expect([again.runId, again.reused]).toEqual([first.runId, true])
          const runs = (yield* Effect.promise(() => readdir(join(root, experimentId), { withFileTypes: true })))
            .filter((e) => e.isDirectory()).map((e) => e.name)
          expect(runs).toEqual([first.runId])
          expect(yield* Effect.promise(() => readFile(join(root, experimentId, first.runId, "meta.yaml"), "utf8"))).toMatch(/^status: 1$/m)
          // A forced rerun: a run of its own, tagged with the one it reran, and the one the next run reuses.
          yield* tracker.endRun(first.runId, "FINISHED")
          const rerun = yield* tracker.startRun({ experimentId, name: "study", reuseKey: "k1", rerun: true, startTime: Date.now() + 1000 })
          expect(rerun.reused).toBe(false)
          expect(rerun.runId).not.toBe(first.runId)
          expect(yield* Effect.promise(() => readFile(join(root, experimentId, rerun.runId, "tags", "sardine.rerunOf"), "utf8"))).toBe(first.runId)
          const afterRerun = yield* tracker.startRun({ experimentId, name: "study", reuseKey: "k1" })
          expect([afterRerun.runId, afterRerun.reused]).toEqual([rerun.runId, true])
        }),
        storeLayer(root)
      )
    }))

  it.live("several writers racing to create an experiment make one", () =>
    Effect.gen(function*() {
      const root = join(yield* Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-store-"))), "mlruns")
      const ids = yield* Effect.all(
        Array.from({ length: 5 }, () => Effect.provide(Effect.flatMap(Tracker, (t) => t.getOrCreateExperiment("raced")), storeLayer(root))),
        { concurrency: "unbounded" }
      )
      expect(new Set(ids).size).toBe(1)
      const folders = (yield* Effect.promise(() => readdir(root))).filter((f) => f !== ".trash").sort()
      expect(folders).toEqual(["0", ids[0]].sort())
    }))

  it.live("a run whose program gets Ctrl-C (SIGINT) ends KILLED, with its metrics kept", () =>
    Effect.gen(function*() {
      const root = join(yield* Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-store-"))), "mlruns")
      const child = spawn(process.execPath, ["--import", "tsx", join(repo, "test/mlflow/ctrl-c-run.script.ts"), root], { cwd: repo })
      const runId = yield* Effect.promise(() =>
        new Promise<string>((resolve, reject) => {
          let out = ""
          child.stdout.on("data", (chunk: Buffer) => {
            out += chunk.toString()
            const match = /started ([0-9a-f]{32})/.exec(out)
            if (match !== null) resolve(match[1]!)
          })
          child.on("exit", (code) => reject(new Error(`exited ${code} before starting`)))
        })
      )
      child.kill("SIGINT")
      // (runMain's default teardown exits 0 on an interruption; bin/ maps it to 130.)
      yield* Effect.promise(() => new Promise<void>((resolve) => child.on("exit", () => resolve())))
      const experiment = (yield* Effect.promise(() => readdir(root))).find((f) => f !== "0" && f !== ".trash")!
      const meta = yield* Effect.promise(() => readFile(join(root, experiment, runId, "meta.yaml"), "utf8"))
      expect(meta).toMatch(/^status: 5$/m)
      expect(meta).toMatch(/^end_time: \d+$/m)
      const lines = (yield* Effect.promise(() => readFile(join(root, experiment, runId, "metrics", "loss"), "utf8"))).trim().split("\n")
      expect(lines.length).toBeGreaterThanOrEqual(4)
    }))

  it.live("drops a metrics line cut short by a crash before appending", () =>
    Effect.gen(function*() {
      const root = join(yield* Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-store-"))), "mlruns")
      yield* Effect.provide(
        Effect.gen(function*() {
          const tracker = yield* Tracker
          const experimentId = yield* tracker.getOrCreateExperiment("torn")
          const r = yield* tracker.startRun({ experimentId, name: "t" })
          yield* tracker.logMetrics(r.runId, [{ key: "loss", value: 0.5, step: 0, timestamp: 10 }])
          const file = join(root, experimentId, r.runId, "metrics", "loss")
          yield* Effect.promise(() => appendFile(file, "11 0.2"))
          yield* tracker.logMetrics(r.runId, [{ key: "loss", value: 0.25, step: 1, timestamp: 12 }, { key: "loss", value: NaN, step: 2, timestamp: 13 }])
          expect(yield* Effect.promise(() => readFile(file, "utf8"))).toBe("10 0.5 0\n12 0.25 1\n13 nan 2\n")
        }),
        storeLayer(root)
      )
    }))

  it.live("a param or experiment file that is there but cannot be read is named, not taken for absent", () =>
    Effect.gen(function*() {
      const root = join(yield* Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-store-"))), "mlruns")
      yield* Effect.provide(
        Effect.gen(function*() {
          const tracker = yield* Tracker
          const experimentId = yield* tracker.getOrCreateExperiment("unreadable")
          const r = yield* tracker.startRun({ experimentId, name: "u" })
          // A link to itself: reading it fails (ELOOP) as root too, where a chmod would not.
          const param = join(root, experimentId, r.runId, "params", "rank")
          yield* Effect.promise(() => symlink("rank", param))
          const paramError = yield* Effect.flip(tracker.logParams(r.runId, { rank: "4" }))
          expect(paramError._tag).toBe("TrackerError")
          expect(paramError.message).toContain(param)
          expect(paramError.message).toContain("ELOOP")
          const meta = join(root, experimentId, "meta.yaml")
          yield* Effect.promise(() => unlink(meta).then(() => symlink("meta.yaml", meta)))
          const experimentError = yield* Effect.flip(tracker.getOrCreateExperiment("another"))
          expect(experimentError.message).toContain(meta)
          expect(experimentError.message).toContain("ELOOP")
        }),
        storeLayer(root)
      )
    }))

  describe("read back by MLflow's own Python client", () => {
    it.live("finds the same runs, params, metric histories, tags, inputs and artifacts", () =>
      Effect.gen(function*() {
        requireMlflowVenv()
        const dir = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-store-")))
        const root = join(dir, "mlruns")
        const study = yield* Effect.provide(logStudy("local-study", join(dir, "files"), "study-local"), storeLayer(root))
        const expectedFile = join(dir, "expected.json")
        yield* Effect.promise(() => writeFile(expectedFile, JSON.stringify(expectation("local-study", study))))
        const { stdout } = yield* Effect.promise(() => checkStore(root, expectedFile))
        const seen = JSON.parse(stdout) as { experiments: Array<{ name: string; runs: Array<{ run_id: string; artifacts: Array<string> }> }> }
        expect(seen.experiments.map((e) => e.name).sort()).toEqual(["Default", "local-study"])
        const runs = seen.experiments.find((e) => e.name === "local-study")!.runs
        expect(runs.length).toBe(3)
        for (const child of study.children) {
          const artifacts = runs.find((r) => r.run_id === child.runId)!.artifacts
          expect(artifacts.filter((a) => !a.startsWith("images/"))).toEqual(Object.keys(child.artifacts).sort())
          const images = artifacts.filter((a) => a.startsWith("images/"))
          expect(images.length).toBe(2 * child.imageSteps.length)
          expect(images.every((a) => /^images\/samples~prompt 0\+step\+\d+\+timestamp\+\d+\+[0-9a-f-]{36}(\+compressed\.webp|\.png)$/.test(a))).toBe(true)
        }
      }))

    it.live("the check names what differs when MLflow reads something else", () =>
      Effect.gen(function*() {
        const dir = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-store-")))
        const root = join(dir, "mlruns")
        const study = yield* Effect.provide(logStudy("local-study", join(dir, "files"), "study-local"), storeLayer(root))
        const expected = expectation("local-study", study)
        const wrong = {
          runs: [{ ...expected.runs[1], params: { ...expected.runs[1]!.params, "train.seed": "999" } }]
        }
        const expectedFile = join(dir, "wrong.json")
        yield* Effect.promise(() => writeFile(expectedFile, JSON.stringify(wrong)))
        const failure = yield* Effect.flip(Effect.tryPromise(() => checkStore(root, expectedFile)))
        const stderr = String((failure.error as { stderr?: string }).stderr)
        expect(stderr).toContain(".params.train.seed: expected \"999\", MLflow reads \"1234\"")
        expect(stderr).toContain("1 difference(s)")
      }))
  })
})
