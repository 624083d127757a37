import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { execFile } from "node:child_process"
import { randomUUID } from "node:crypto"
import { mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { makeFileStoreTracker } from "../../adapters/mlflow/file-store-tracker.ts"
import { LOCAL_RUN_ID_TAG, runPushLayer } from "../../adapters/mlflow/push.ts"
import { RunPush, Tracker } from "../../framework/services/tracker.ts"
import { expectStudyOnServer } from "./expect-study.ts"
import { repo, sharedServerUri } from "./mlflow-server.ts"
import { startFakeOverloadedProxy } from "./fake-overloaded-proxy.ts"
import { downloadArtifact, getJson, readHistory, readRun, searchRuns } from "./read-back.ts"
import { logStudy } from "./study-scenario.ts"

const uri = await sharedServerUri()
const run = promisify(execFile)

const storeLayer = (root: string) => Layer.effect(Tracker, makeFileStoreTracker(root))

const push = (source: string, target: string) => Effect.provide(Effect.flatMap(RunPush, (p) => p.push(source, target)), runPushLayer({ env: {} }))

describe("sardine mlflow push against a real MLflow server", () => {
  const server = uri as string

  const remoteIds = (experimentId: string) =>
    Effect.promise(async () => {
      const runs = await searchRuns(server, experimentId, "")
      return new Map<string, string>(runs.map((r: any) => [
        r.data.tags.find((t: { key: string }) => t.key === LOCAL_RUN_ID_TAG).value,
        r.info.run_id
      ]))
    })

  it.live("replays runs with parent links, histories, params, tags, inputs and artifacts; a second push creates nothing", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-push-")))
      const root = join(dir, "mlruns")
      const name = `sardine-test-push-${randomUUID().slice(0, 8)}`
      const study = yield* Effect.provide(logStudy(name, join(dir, "files"), "study-push"), storeLayer(root))

      const first = yield* push(root, server)
      expect(first).toMatchObject({ created: 3, updated: 0, unchanged: 0, experiments: 1, target: server })
      const experimentId = (yield* Effect.promise(() => getJson(server, "experiments/get-by-name", { experiment_name: name }))).experiment.experiment_id
      const ids = yield* remoteIds(experimentId)
      expect(ids.size).toBe(3)
      yield* Effect.promise(() => expectStudyOnServer(server, study, (r) => ids.get(r.runId)!, { extraTags: (r) => ({ [LOCAL_RUN_ID_TAG]: r.runId }) }))

      const second = yield* push(root, server)
      expect(second).toMatchObject({ created: 0, updated: 0, unchanged: 3 })
      expect((yield* Effect.promise(() => searchRuns(server, experimentId, ""))).length).toBe(3)

      // A local run that goes on after a push: the next push brings the server's copy up to date.
      const child = study.children[0]!
      yield* Effect.provide(
        Effect.flatMap(Tracker, (t) => t.logMetrics(child.runId, [{ key: "train/loss", step: 300, value: 0.001, timestamp: 1_790_000_003_000 }])),
        storeLayer(root)
      )
      // Pushed through an observing proxy: only the new artifact is uploaded, not the unchanged ones.
      yield* Effect.promise(() => writeFile(join(dir, "files", "report.md"), "# late report\n"))
      yield* Effect.provide(
        Effect.flatMap(Tracker, (t) => t.logArtifact(child.runId, join(dir, "files", "report.md"), "reports")),
        storeLayer(root)
      )
      const observer = yield* Effect.promise(() => startFakeOverloadedProxy(server, []))
      const third = yield* Effect.ensuring(push(root, observer.uri), Effect.promise(() => observer.close()))
      expect(third).toMatchObject({ created: 0, updated: 1, unchanged: 2, target: observer.uri })
      expect(observer.seen.filter((s) => s.method === "PUT").map((s) => s.path.split("/").slice(-2).join("/"))).toEqual(["reports/report.md"])
      const artifactUri = (yield* Effect.promise(() => readRun(server, ids.get(child.runId)!))).info.artifact_uri
      expect((yield* Effect.promise(() => downloadArtifact(server, artifactUri, "reports/report.md"))).toString()).toBe("# late report\n")
      const history = yield* Effect.promise(() => readHistory(server, ids.get(child.runId)!, "train/loss"))
      expect(history.length).toBe(301)
      expect(history.at(-1)).toEqual({ step: 300, value: 0.001, timestamp: 1_790_000_003_000 })
      expect((yield* Effect.promise(() => searchRuns(server, experimentId, ""))).length).toBe(3)
    }))

  it.live("the command pushes, reports and exits with the documented codes", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-push-cli-")))
      const root = join(dir, "mlruns")
      const name = `sardine-test-push-cli-${randomUUID().slice(0, 8)}`
      yield* Effect.provide(logStudy(name, join(dir, "files"), "study-cli"), storeLayer(root))
      const sardine = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
        Effect.promise(() =>
          run("npx", ["tsx", join(repo, "bin/sardine.ts"), ...args], { cwd: repo, env: { ...process.env, ...env } })
            .then(({ stdout }) => ({ code: 0, stdout, stderr: "" }))
            .catch((e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }))
        )
      const pushed = yield* sardine(["mlflow", "push", root, "--to", server])
      expect(pushed.code).toBe(0)
      expect(pushed.stdout).toContain(`to ${server}: 3 run(s) created, 0 updated, 0 unchanged, in 1 experiment(s)`)
      // MLFLOW_TRACKING_URI stands in for --to.
      const again = yield* sardine(["mlflow", "push", root, "--quiet"], { MLFLOW_TRACKING_URI: server })
      expect(again.code).toBe(0)
      expect(again.stdout.trim()).toBe(`pushed ${root} to ${server}: 0 run(s) created, 0 updated, 3 unchanged, in 1 experiment(s)`)
      const badUri = yield* sardine(["mlflow", "push", root, "--to", "ftp://someone:hunter2@example.org"])
      expect(badUri.code).toBe(1)
      expect(badUri.stderr).toContain("tracking URI")
      expect(badUri.stderr).not.toContain("hunter2")
      const notAFolder = yield* sardine(["mlflow", "push", join(dir, "files"), "--to", server])
      expect(notAFolder.code).toBe(1)
      expect(notAFolder.stderr).toContain("not an MLflow folder")
      const missing = yield* sardine(["mlflow", "push", join(dir, "nope"), "--to", server])
      expect(missing.code).toBe(2)
    }), { timeout: 240_000 })
})
