import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { randomBytes, randomUUID } from "node:crypto"
import { mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { makeRestClient, restConfig, type Env } from "../../adapters/mlflow/rest-client.ts"
import { makeRestTracker } from "../../adapters/mlflow/rest-tracker.ts"
import { Tracker } from "../../framework/services/tracker.ts"
import { type DedicatedServer, freePort, killServer, requireMlflowVenv, startServer, stopServer } from "./mlflow-server.ts"
import { downloadArtifact, readHistory, readRun } from "./read-back.ts"

/*
 * A dedicated server this file controls: MLflow's basic-auth app (credentials are really checked), killed
 * with SIGKILL and restarted while a run is logging.
 */

const password = `pw-${randomBytes(12).toString("hex")}`
const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString("base64")}`
const adminAuth = basic("admin", password)

const trackerLayer = (uri: string, env: Env) =>
  Layer.scoped(
    Tracker,
    Effect.flatMap(
      restConfig(uri, env, { retry: { initialDelayMs: 200, maxDelayMs: 2000, budgetMs: 240_000 } }),
      (config) => makeRestTracker(makeRestClient(config), { metricFlushIntervalMs: 100 })
    )
  )

describe("a dedicated MLflow server with basic auth", () => {
  let server: DedicatedServer
  beforeAll(async () => {
    requireMlflowVenv()
    const dir = await mkdtemp(join(tmpdir(), "sardine-mlflow-auth-"))
    server = await startServer(dir, await freePort(), { basicAuthPassword: password })
  }, 240_000)
  afterAll(async () => {
    if (server !== undefined) await stopServer(server)
  })

  const env = (): Env => ({ MLFLOW_TRACKING_USERNAME: "admin", MLFLOW_TRACKING_PASSWORD: password })

  it.live("sends MLFLOW_TRACKING_USERNAME/PASSWORD as basic auth, for API calls and artifact uploads", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-auth-")))
      yield* Effect.promise(() => writeFile(join(dir, "report.md"), "# report\n"))
      const runId = yield* Effect.provide(
        Effect.gen(function*() {
          const tracker = yield* Tracker
          const experimentId = yield* tracker.getOrCreateExperiment("auth-ok")
          const run = yield* tracker.startRun({ experimentId, name: "with-credentials" })
          yield* tracker.logParams(run.runId, { a: "1" })
          yield* tracker.logArtifact(run.runId, join(dir, "report.md"))
          yield* tracker.endRun(run.runId, "FINISHED")
          return run.runId
        }),
        trackerLayer(server.uri, env())
      )
      const stored = yield* Effect.promise(() => readRun(server.uri, runId, adminAuth))
      expect([stored.info.status, stored.params.a]).toEqual(["FINISHED", "1"])
      const bytes = yield* Effect.promise(() => downloadArtifact(server.uri, stored.info.artifact_uri, "report.md", adminAuth))
      expect(bytes.toString()).toBe("# report\n")
    }))

  it.live("credentials in the URI work too and never show in the target", () =>
    Effect.gen(function*() {
      const uri = server.uri.replace("http://", `http://admin:${encodeURIComponent(password)}@`)
      const target = yield* Effect.provide(
        Effect.gen(function*() {
          const tracker = yield* Tracker
          yield* tracker.getOrCreateExperiment("auth-uri")
          return tracker.target
        }),
        trackerLayer(uri, {})
      )
      expect(target).toBe(server.uri)
    }))

  it.live("a wrong password fails with the server's 401 and no secret in the error", () =>
    Effect.gen(function*() {
      const wrong = `wrong-${randomUUID()}`
      const error = yield* Effect.flip(Effect.provide(
        Effect.flatMap(Tracker, (t) => t.getOrCreateExperiment("auth-bad")),
        trackerLayer(server.uri, { MLFLOW_TRACKING_USERNAME: "admin", MLFLOW_TRACKING_PASSWORD: wrong })
      ))
      expect(error).toMatchObject({ _tag: "TrackerError", status: 401 })
      const shown = `${error.message} ${JSON.stringify(error)} ${String(error)}`
      expect(shown).not.toContain(wrong)
      expect(shown).not.toContain(Buffer.from(`admin:${wrong}`).toString("base64"))
    }))

  it.live("loses no metric when the server is killed and restarted during a logging burst", () =>
    Effect.gen(function*() {
      const rounds = 40
      const perRound = 50
      const result = yield* Effect.provide(
        Effect.gen(function*() {
          const tracker = yield* Tracker
          const experimentId = yield* tracker.getOrCreateExperiment("restart")
          const run = yield* tracker.startRun({ experimentId, name: "burst" })
          const killed = yield* Effect.makeLatch(false)
          const burst = yield* Effect.fork(Effect.gen(function*() {
            for (let round = 0; round < rounds; round++) {
              if (round === 10) yield* killed.open
              yield* tracker.logMetrics(
                run.runId,
                Array.from({ length: perRound }, (_, i) => {
                  const step = round * perRound + i
                  return { key: "train/loss", step, value: 1 / (step + 1), timestamp: 1_700_000_000_000 + step }
                })
              )
              yield* Effect.sleep("50 millis")
            }
          }))
          yield* killed.await
          yield* Effect.promise(() => killServer(server))
          // Logging goes on while the server is down; the buffer keeps what cannot be sent.
          yield* Fiber.join(burst)
          yield* Effect.promise(() => startServer(server.dir, server.port, { basicAuthPassword: password }))
          yield* tracker.endRun(run.runId, "FINISHED")
          return run.runId
        }),
        trackerLayer(server.uri, env())
      )
      const history = yield* Effect.promise(() => readHistory(server.uri, result, "train/loss", adminAuth))
      expect(history.length).toBe(rounds * perRound)
      expect(history).toEqual(
        Array.from({ length: rounds * perRound }, (_, step) => ({ step, value: 1 / (step + 1), timestamp: 1_700_000_000_000 + step }))
      )
      expect((yield* Effect.promise(() => readRun(server.uri, result, adminAuth))).info.status).toBe("FINISHED")
    }), { timeout: 300_000 })
})
