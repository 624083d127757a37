import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { randomUUID } from "node:crypto"
import { makeRestClient, restConfig, type Env } from "../../adapters/mlflow/rest-client.ts"
import { makeRestTracker } from "../../adapters/mlflow/rest-tracker.ts"
import { Tracker } from "../../framework/services/tracker.ts"
import { startFakeOverloadedProxy } from "./fake-overloaded-proxy.ts"
import { sharedServerUri } from "./mlflow-server.ts"
import { getJson, readRun } from "./read-back.ts"

const uri = await sharedServerUri()

const trackerLayer = (server: string, env: Env, budgetMs: number) =>
  Layer.scoped(
    Tracker,
    Effect.flatMap(
      restConfig(server, env, { retry: { initialDelayMs: 100, maxDelayMs: 1000, budgetMs } }),
      (config) => makeRestTracker(makeRestClient(config), { metricFlushIntervalMs: 100 })
    )
  )

describe("retries against an overloaded server", () => {
  const real = uri as string
  const proxies: Array<{ close: () => Promise<void> }> = []
  afterEach(async () => {
    for (const p of proxies.splice(0)) await p.close()
  })

  it.live("retries 429 (after its Retry-After) and 503 until the server answers, sending the token each time", () =>
    Effect.gen(function*() {
      const proxy = yield* Effect.promise(() => startFakeOverloadedProxy(real, [{ status: 429, retryAfter: 1 }, { status: 429 }, { status: 503 }]))
      proxies.push(proxy)
      const name = `sardine-test-retry-${randomUUID().slice(0, 8)}`
      const runId = yield* Effect.provide(
        Effect.gen(function*() {
          const tracker = yield* Tracker
          const experimentId = yield* tracker.getOrCreateExperiment(name)
          const run = yield* tracker.startRun({ experimentId, name: "r" })
          yield* tracker.logParams(run.runId, { a: "1" })
          return run.runId
        }),
        trackerLayer(proxy.uri, { MLFLOW_TRACKING_TOKEN: "tok-123" }, 30_000)
      )
      expect(proxy.seen.slice(0, 4).map((s) => s.status)).toEqual([429, 429, 503, 404])
      expect(proxy.seen[0]!.path).toBe(proxy.seen[3]!.path)
      expect(proxy.seen[1]!.at - proxy.seen[0]!.at).toBeGreaterThanOrEqual(1000)
      expect(proxy.seen.every((s) => s.authorization === "Bearer tok-123")).toBe(true)
      expect((yield* Effect.promise(() => readRun(real, runId))).params).toEqual({ a: "1" })
      expect((yield* Effect.promise(() => getJson(real, "experiments/get-by-name", { experiment_name: name }))).experiment.name).toBe(name)
    }))

  it.live("gives up after the retry budget, with the last status and how long it tried", () =>
    Effect.gen(function*() {
      const proxy = yield* Effect.promise(() => startFakeOverloadedProxy(real, Array.from({ length: 100 }, () => ({ status: 503 }))))
      proxies.push(proxy)
      const error = yield* Effect.flip(Effect.provide(
        Effect.flatMap(Tracker, (t) => t.getOrCreateExperiment("never")),
        trackerLayer(proxy.uri, {}, 1500)
      ))
      expect(error).toMatchObject({ _tag: "TrackerError", status: 503, operation: "experiments/get-by-name" })
      expect(error.message).toMatch(/gave up after \d+ attempts/)
      expect(proxy.seen.length).toBeGreaterThan(2)
    }))

  it.live("does not retry a refusal that will not change (the real server's 404)", () =>
    Effect.gen(function*() {
      const proxy = yield* Effect.promise(() => startFakeOverloadedProxy(real, []))
      proxies.push(proxy)
      const error = yield* Effect.flip(Effect.provide(
        Effect.flatMap(Tracker, (t) => t.logParams("0123456789abcdef0123456789abcdef", { a: "1" })),
        trackerLayer(proxy.uri, {}, 30_000)
      ))
      expect(error).toMatchObject({ error_code: "RESOURCE_DOES_NOT_EXIST", status: 404 })
      expect(proxy.seen.map((s) => s.status)).toEqual([404])
    }))
})
