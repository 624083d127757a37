import { describe, expect, it } from "@effect/vitest"
import { NodeContext } from "@effect/platform-node"
import { Effect, Option, Redacted } from "effect"
import { execFile } from "node:child_process"
import { mkdtemp, mkdir, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { chunkLogBatch } from "../../adapters/mlflow/log-batch-chunks.ts"
import { restConfig } from "../../adapters/mlflow/rest-client.ts"
import { proxiedArtifactRoot } from "../../adapters/mlflow/rest-tracker.ts"
import { thumbnailSize } from "../../adapters/mlflow/image-artifacts.ts"
import { trackingTarget } from "../../adapters/mlflow/tracker-factory.ts"
import { flattenParams } from "../../framework/tracking/flatten-params.ts"
import { gitCommitOf } from "../../framework/tracking/git-commit.ts"
import { keyProblem, MAX_BATCH_BODY_BYTES } from "../../framework/tracking/mlflow-limits.ts"
import { systemTags } from "../../framework/tracking/system-tags.ts"
import { repo } from "./mlflow-server.ts"

const run = promisify(execFile)

describe("flattening a declaration into MLflow params", () => {
  it("uses dot paths, names for named elements, JSON for scalar arrays", () => {
    const params = flattenParams({
      name: "hybrid",
      components: [{ name: "unet", treatment: "full", lr: 1e-5 }, { name: "text_encoder", treatment: "lora", rank: 8 }],
      train: { steps: 1000, resolution: [512, 512], ema: false, notes: null, extra: {} },
      prompts: [],
      schedule: [{ at: 0, lr: 1 }, { at: 10, lr: 0.5 }]
    })
    expect(params).toEqual({
      name: "hybrid",
      "components.unet.name": "unet",
      "components.unet.treatment": "full",
      "components.unet.lr": "0.00001",
      "components.text_encoder.name": "text_encoder",
      "components.text_encoder.treatment": "lora",
      "components.text_encoder.rank": "8",
      "train.steps": "1000",
      "train.resolution": "[512,512]",
      "train.ema": "false",
      "train.notes": "null",
      "train.extra": "{}",
      prompts: "[]",
      "schedule.0.at": "0",
      "schedule.0.lr": "1",
      "schedule.1.at": "10",
      "schedule.1.lr": "0.5"
    })
  })

  it("keeps every key and value within MLflow's rules", () => {
    const long = "x".repeat(7000)
    const params = flattenParams({
      "weird key <SAR>!": 1,
      "a/b": 1,
      a_b: 2,
      [`k${"y".repeat(300)}`]: { [`z${"w".repeat(100)}`]: 1, [`z${"w".repeat(100)}2`]: 2 },
      text: long,
      other: `${long}!`
    })
    for (const key of Object.keys(params)) expect(keyProblem(key), key).toBeUndefined()
    expect(params["weird key _SAR__"]).toBe("1")
    // "a/b" and "a_b" sanitise alike; both survive under different keys.
    expect(Object.entries(params).filter(([k]) => k.startsWith("a_b")).map(([, v]) => v).sort()).toEqual(["1", "2"])
    const longKeys = Object.keys(params).filter((k) => k.startsWith("kyyy"))
    expect(longKeys.length).toBe(2)
    expect(longKeys.every((k) => k.length === 250)).toBe(true)
    expect(params.text!.length).toBe(6000)
    expect(params.text).toMatch(/^x+…\[7000 chars, sha256 [0-9a-f]{8}\]$/)
    expect(params.other).not.toBe(params.text)
  })
})

describe("system tags", () => {
  it("sets MLflow's source tags and sardine's, the parent only for child runs", () => {
    const tags = systemTags({
      runName: "exp-a",
      sardineVersion: "0.1.0",
      user: "me",
      host: "box",
      sourceName: "experiments/a.ts",
      gitCommit: "abc",
      backend: "wasm",
      parentRunId: "p1"
    })
    expect(tags).toEqual({
      "mlflow.runName": "exp-a",
      "mlflow.user": "me",
      "mlflow.source.name": "experiments/a.ts",
      "mlflow.source.type": "LOCAL",
      "mlflow.source.git.commit": "abc",
      "mlflow.parentRunId": "p1",
      "sardine.version": "0.1.0",
      "sardine.host": "box",
      "sardine.backend": "wasm"
    })
    expect(Object.keys(systemTags({ runName: "s", sardineVersion: "0.1.0", user: "me", host: "box", sourceName: "s.ts" })))
      .not.toContain("mlflow.parentRunId")
  })

  it.live("reads the commit of the repository holding a file, as git does", () =>
    Effect.gen(function*() {
      const { stdout } = yield* Effect.promise(() => run("git", ["rev-parse", "HEAD"], { cwd: repo }))
      expect(yield* gitCommitOf(join(repo, "framework/tracking/git-commit.ts"))).toEqual(Option.some(stdout.trim()))
      const outside = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-nogit-")))
      expect(yield* gitCommitOf(join(outside, "a.ts"))).toEqual(Option.none())
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("follows packed refs and a worktree's .git file", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-git-")))
      const git = (...args: Array<string>) => Effect.promise(() => run("git", args, { cwd: dir }))
      yield* git("init", "-q", "-b", "main")
      yield* Effect.promise(() => writeFile(join(dir, "a.ts"), "x"))
      yield* git("add", "a.ts")
      yield* git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
      yield* git("pack-refs", "--all")
      const head = (yield* git("rev-parse", "HEAD")).stdout.trim()
      expect(yield* gitCommitOf(join(dir, "a.ts"))).toEqual(Option.some(head))
      yield* git("worktree", "add", "-q", "-b", "side", join(dir, "wt"))
      yield* Effect.promise(() => mkdir(join(dir, "wt", "sub"), { recursive: true }))
      expect(yield* gitCommitOf(join(dir, "wt", "sub", "b.ts"))).toEqual(Option.some(head))
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("log-batch chunks", () => {
  it("respects the count limits and the 1 MB body limit, keeping order", () => {
    const params = Array.from({ length: 250 }, (_, i) => ({ key: `p${i}`, value: "v".repeat(5999) }))
    const tags = Array.from({ length: 120 }, (_, i) => ({ key: `t${i}`, value: "t" }))
    const metrics = Array.from({ length: 2500 }, (_, i) => ({ key: "loss", value: i === 3 ? NaN : i === 4 ? -Infinity : i, step: i, timestamp: i }))
    const bodies = chunkLogBatch("run", { params, tags, metrics })
    for (const body of bodies) {
      expect(body.metrics.length).toBeLessThanOrEqual(1000)
      expect(body.params.length).toBeLessThanOrEqual(100)
      expect(body.tags.length).toBeLessThanOrEqual(100)
      expect(body.metrics.length + body.params.length + body.tags.length).toBeLessThanOrEqual(1000)
      expect(Buffer.byteLength(JSON.stringify(body))).toBeLessThanOrEqual(MAX_BATCH_BODY_BYTES)
    }
    expect(bodies.flatMap((b) => b.params)).toEqual(params)
    expect(bodies.flatMap((b) => b.tags)).toEqual(tags)
    const sent = bodies.flatMap((b) => b.metrics)
    expect(sent.map((m) => m.step)).toEqual(metrics.map((m) => m.step))
    expect([sent[3]!.value, sent[4]!.value, sent[5]!.value]).toEqual(["NaN", "-Infinity", 5])
  })
})

describe("tracking URIs and credentials", () => {
  it.effect("chooses a server, a folder or ./mlruns like MLflow", () =>
    Effect.gen(function*() {
      expect(yield* trackingTarget(undefined, {}, "/work")).toEqual({ kind: "folder", path: "/work/mlruns" })
      expect(yield* trackingTarget(undefined, { MLFLOW_TRACKING_URI: "http://h:5000" }, "/w")).toEqual({ kind: "server", uri: "http://h:5000" })
      expect(yield* trackingTarget("https://h/ml", { MLFLOW_TRACKING_URI: "http://other" }, "/w")).toEqual({ kind: "server", uri: "https://h/ml" })
      expect(yield* trackingTarget("file:///tmp/runs", {}, "/w")).toEqual({ kind: "folder", path: "/tmp/runs" })
      expect(yield* trackingTarget("runs", {}, "/w")).toEqual({ kind: "folder", path: "/w/runs" })
      const error = yield* Effect.flip(trackingTarget("databricks://u:secret@x", {}, "/w"))
      expect(error).toMatchObject({ _tag: "TrackingInputError", field: "tracking URI" })
      expect(error.message).not.toContain("secret")
    }))

  it.effect("takes the token before user and password, and both before the URI's", () =>
    Effect.gen(function*() {
      const header = (c: { authorization: Option.Option<Redacted.Redacted<string>> }) => Option.map(c.authorization, Redacted.value)
      const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`
      const env = { MLFLOW_TRACKING_USERNAME: "u", MLFLOW_TRACKING_PASSWORD: "p" }
      expect(header(yield* restConfig("http://x:1", { ...env, MLFLOW_TRACKING_TOKEN: "tok" }))).toEqual(Option.some("Bearer tok"))
      expect(header(yield* restConfig("http://a:b@x:1", env))).toEqual(Option.some(basic("u", "p")))
      const fromUri = yield* restConfig("http://a:b%40c@x:1/prefix/", {})
      expect(header(fromUri)).toEqual(Option.some(basic("a", "b@c")))
      expect(fromUri.target).toBe("http://x:1/prefix")
      expect(String(fromUri.authorization)).not.toContain(Buffer.from("a:b@c").toString("base64"))
      expect(header(yield* restConfig("http://x:1", {}))).toEqual(Option.none())
      const half = yield* Effect.flip(restConfig("http://x:1", { MLFLOW_TRACKING_USERNAME: "u" }))
      expect(half).toMatchObject({ field: "MLFLOW_TRACKING_USERNAME" })
    }))

  it("finds the artifact proxy path in a run's artifact URI", () => {
    expect(proxiedArtifactRoot("mlflow-artifacts:/3/abc/artifacts")).toBe("3/abc/artifacts")
    expect(proxiedArtifactRoot("mlflow-artifacts://host:5000/3/abc/artifacts/")).toBe("3/abc/artifacts")
    expect(proxiedArtifactRoot("s3://bucket/3/abc/artifacts")).toBeUndefined()
  })

  it("sizes thumbnails like mlflow's compress_image_size", () => {
    expect(thumbnailSize(96, 64)).toEqual({ width: 256, height: 170 })
    expect(thumbnailSize(64, 96)).toEqual({ width: 170, height: 256 })
    expect(thumbnailSize(1024, 1024)).toEqual({ width: 256, height: 256 })
  })
})
