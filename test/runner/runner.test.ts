import { Effect } from "effect"
import { existsSync } from "node:fs"
import { mkdtemp, readFile, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { canonicalJsonPretty } from "../../framework/declaration/canonical-json.ts"
import { decodeDeclaration, encodeDeclaration } from "../../framework/declaration/decode.ts"
import { planOf } from "../support/plan-of.ts"
import type { Plan } from "../../framework/plan/step.ts"
import { fileStudy } from "../support/declarations.ts"
import { cacheOutputs as outputs } from "../support/cache-outputs.ts"
import { localRuns } from "../support/local-mlruns.ts"
import { repoRoot, run as runProcess, start as startProcess, type Running } from "../support/run-process.ts"

const script = `${repoRoot}/test/runner/sardine-with-file-steps.ts`
/** Every run of these tests tracks into the test's own folder (the same as `--tracking-uri`). */
let trackingDir = ""
const cli = script
const withTracking = (args: ReadonlyArray<string>) => args[0] === "run" ? [...args, "--tracking-uri", trackingDir] : args
const run = (s: string, args: ReadonlyArray<string>, options: { env?: Record<string, string> } = {}) => runProcess(s, withTracking(args), options)
const start = (s: string, args: ReadonlyArray<string>, options: { env?: Record<string, string> } = {}) => startProcess(s, withTracking(args), options)

const setUp = async (trainSteps = 40) => {
  const dir = await mkdtemp(join(tmpdir(), "sardine-runner-"))
  const declaration = await Effect.runPromise(decodeDeclaration(fileStudy(trainSteps)))
  const file = join(dir, "study.json")
  await writeFile(file, canonicalJsonPretty(encodeDeclaration(declaration)))
  trackingDir = join(dir, "mlruns")
  return { dir, file, plan: await planOf(file, declaration) }
}

const keyOf = (plan: Plan, id: string) => plan.steps.find((s) => s.id === id)!.key

const waitFor = async (condition: () => boolean, process: Running, what: string) => {
  const deadline = Date.now() + 60_000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output:\n${process.output()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe("the runner", () => {
  it("runs a study once, then finds every step in the cache", async () => {
    const { dir, file, plan } = await setUp(6)
    const cache = join(dir, "cache")
    const first = await run(cli, ["run", file, "--cache-dir", cache])
    expect(first.stderr).toContain("done")
    expect(first.code).toBe(0)
    expect(first.stdout).toContain(`file-study: ${plan.steps.length} ran, 0 cached, 0 failed, 0 blocked`)
    const second = await run(cli, ["run", file, "--cache-dir", cache])
    expect(second.code).toBe(0)
    expect(second.stdout).toContain(`file-study: 0 ran, ${plan.steps.length} cached, 0 failed, 0 blocked`)
    const planned = await run(cli, ["plan", file, "--cache-dir", cache, "--json"])
    expect((JSON.parse(planned.stdout) as { steps: Array<{ cached: boolean }> }).steps.every((s) => s.cached)).toBe(true)
    expect((await readFile(join(cache, "steps", keyOf(plan, "report"), "report.txt"), "utf8")).split("\n")).toHaveLength(4)

    // One parent run for the study, one child per experiment; the rerun reused them.
    const runs = await localRuns(join(dir, "mlruns"))
    expect(runs.map((r) => [r.name, r.status])).toEqual([
      ["baseline", "FINISHED"],
      ["file-study", "FINISHED"],
      ["full-unet", "FINISHED"],
      ["lora-unet", "FINISHED"]
    ])
    const parent = runs.find((r) => r.name === "file-study")!
    for (const child of runs.filter((r) => r !== parent)) expect(child.tags["mlflow.parentRunId"]).toBe(parent.id)
    const lora = runs.find((r) => r.name === "lora-unet")!
    expect(lora.params["components.unet._tag"]).toBe("lora")
    expect(lora.params["components.unet.rank"]).toBe("2")
    expect(lora.params["steps.train.key"]).toBe(keyOf(plan, "lora-unet/train"))
    expect(parent.params["study.experiments"]).toBe("[\"full-unet\",\"lora-unet\",\"baseline\"]")
  })

  it("a run killed mid-training resumes and ends with the same outputs as an uninterrupted run", async () => {
    const { dir, file, plan } = await setUp(40)
    const reference = join(dir, "uninterrupted")
    expect((await run(cli, ["run", file, "--cache-dir", reference])).code).toBe(0)

    const cache = join(dir, "killed")
    const trainKey = keyOf(plan, "full-unet/train")
    const checkpoint = join(cache, "partial", trainKey, "checkpoints", "latest.json")
    const victim = start(cli, ["run", file, "--cache-dir", cache], { env: { FILE_STEPS_DELAY_MS: "40" } })
    await waitFor(() => existsSync(checkpoint), victim, "the first checkpoint")
    victim.child.kill("SIGKILL")
    await victim.done
    expect(existsSync(join(cache, "steps", trainKey))).toBe(false)
    const interruptedAt = (JSON.parse(await readFile(checkpoint, "utf8")) as { step: number }).step
    expect(interruptedAt).toBeLessThan(40)

    const rerun = await run(cli, ["run", file, "--cache-dir", cache])
    expect(rerun.code).toBe(0)
    expect(rerun.stderr).toContain(`resuming at iteration ${interruptedAt}`)
    expect(await outputs(cache, plan)).toEqual(await outputs(reference, plan))
  })

  it("Ctrl-C stops cleanly with exit 130, commits nothing half-written, and the next run resumes", async () => {
    const { dir, file, plan } = await setUp(40)
    const cache = join(dir, "cache")
    const trainKey = keyOf(plan, "full-unet/train")
    const checkpoint = join(cache, "partial", trainKey, "checkpoints", "latest.json")
    const victim = start(cli, ["run", file, "--cache-dir", cache], { env: { FILE_STEPS_DELAY_MS: "40" } })
    await waitFor(() => existsSync(checkpoint), victim, "the first checkpoint")
    victim.child.kill("SIGINT")
    const result = await victim.done
    expect(result.code).toBe(130)
    expect(result.stderr).toContain("killed")
    expect(result.stderr).toContain("interrupted")
    expect(existsSync(join(cache, "steps", trainKey))).toBe(false)
    expect(existsSync(join(cache, "locks", trainKey))).toBe(false)
    expect((await localRuns(join(dir, "mlruns"))).map((r) => r.status)).toEqual(["KILLED", "KILLED", "KILLED", "KILLED"])
    // Data preparation had finished before the interruption and stays.
    expect(existsSync(join(cache, "steps", keyOf(plan, "full-unet/data"), "sardine-step.json"))).toBe(true)

    const rerun = await run(cli, ["run", file, "--cache-dir", cache])
    expect(rerun.code).toBe(0)
    expect(rerun.stderr).toMatch(/resuming at iteration \d+/)
    expect(rerun.stdout).toMatch(/file-study: \d+ ran, [1-9]\d* cached, 0 failed/)
  })

  it("a failing experiment does not lose the others' finished steps", async () => {
    const { dir, file, plan } = await setUp(6)
    const cache = join(dir, "cache")
    const failed = await run(cli, ["run", file, "--cache-dir", cache], { env: { FILE_STEPS_FAIL_TRAIN: "full-unet/train" } })
    expect(failed.code).toBe(1)
    expect(failed.stderr).toContain("full-unet/train: failed — full-unet/train: failing on purpose")
    expect(failed.stderr).toContain("full-unet/generate: blocked — needs full-unet/train (failed)")
    expect(failed.stderr).toContain("report: blocked")
    for (const id of ["lora-unet/evaluate", "baseline/evaluate"]) {
      expect(existsSync(join(cache, "steps", keyOf(plan, id), "metrics.json"))).toBe(true)
    }
    expect((await localRuns(join(dir, "mlruns"))).map((r) => [r.name, r.status])).toEqual([
      ["baseline", "FINISHED"],
      ["file-study", "FAILED"],
      ["full-unet", "FAILED"],
      ["lora-unet", "FINISHED"]
    ])
    const rerun = await run(cli, ["run", file, "--cache-dir", cache])
    expect(rerun.code).toBe(0)
    // Only the failed experiment's steps and the report run again.
    expect(rerun.stdout).toContain(`file-study: 4 ran, ${plan.steps.length - 4} cached`)
  })

  it("two processes on one cache never run the same step twice", async () => {
    const { dir, file, plan } = await setUp(20)
    const cache = join(dir, "cache")
    const env = { FILE_STEPS_DELAY_MS: "20" }
    const [a, b] = await Promise.all([run(cli, ["run", file, "--cache-dir", cache], { env }), run(cli, ["run", file, "--cache-dir", cache], { env })])
    expect(a.code).toBe(0)
    expect(b.code).toBe(0)
    const started = (a.stderr + b.stderr).split("\n").filter((l) => l.includes("start  train"))
    expect(started).toHaveLength(plan.steps.filter((s) => s.kind === "train").length)
    const ran = (out: string) => Number(/(\d+) ran/.exec(out)![1])
    expect(ran(a.stdout) + ran(b.stdout)).toBe(plan.steps.length)
  })

  it("--only runs the named steps and what they need; --dry-run runs nothing", async () => {
    const { dir, file, plan } = await setUp(6)
    const cache = join(dir, "cache")
    const dry = await run(cli, ["run", file, "--cache-dir", cache, "--only", "lora-unet/train", "--dry-run"])
    expect(dry.code).toBe(0)
    expect(dry.stdout.trim().split("\n").slice(1).map((l) => l.trim().split(/\s+/)[1])).toEqual([
      "full-unet/data",
      "full-unet/latents",
      "full-unet/text",
      "lora-unet/train"
    ])
    expect(existsSync(join(cache, "steps"))).toBe(false)
    const only = await run(cli, ["run", file, "--cache-dir", cache, "--only", "lora-unet/train"])
    expect(only.code).toBe(0)
    expect(only.stdout).toContain(`4 ran, 0 cached, 0 failed, 0 blocked, ${plan.steps.length - 4} not selected`)
    const unknown = await run(cli, ["run", file, "--cache-dir", cache, "--only", "nope"])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain("--only nope: no step has this id or kind")
  })
})
