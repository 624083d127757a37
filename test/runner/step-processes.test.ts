import { Effect } from "effect"
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { canonicalJsonPretty } from "../../framework/declaration/canonical-json.ts"
import { decodeDeclaration, encodeDeclaration } from "../../framework/declaration/decode.ts"
import { cacheOutputs as outputs } from "../support/cache-outputs.ts"
import { fileStudy } from "../support/declarations.ts"
import { planOf } from "../support/plan-of.ts"
import { nodeCommand, repoRoot, run } from "../support/run-process.ts"

/** The real command line with the file-working test steps; its step processes run the same program. */
const cli = `${repoRoot}/test/runner/sardine-with-file-steps.ts`

const made: Array<string> = []
afterAll(() => Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true }))))

const setUp = async (trainSteps: number) => {
  const dir = await mkdtemp(join(tmpdir(), "sardine-processes-"))
  made.push(dir)
  const declaration = await Effect.runPromise(decodeDeclaration(fileStudy(trainSteps)))
  const file = join(dir, "study.json")
  await writeFile(file, canonicalJsonPretty(encodeDeclaration(declaration)))
  const plan = await planOf(file, declaration)
  const args = (
    cache: string,
    ...more: Array<string>
  ) => ["run", file, "--cache-dir", join(dir, cache), "--tracking-uri", join(dir, `${cache}-mlruns`), ...more]
  return { dir, plan, args, keyOf: (id: string) => plan.steps.find((s) => s.id === id)!.key }
}

/** The pids of the step processes a run started, from their log files (`<key>.pid<pid>.out`). */
const stepProcesses = async (cacheDir: string) =>
  (await readdir(join(cacheDir, "jobs", "logs"))).map((name) => {
    const [, key, pid] = /^(\w+)\.pid(\d+)\.out$/.exec(name) ?? []
    return { key: key!, pid: Number(pid) }
  })

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Starts the run with one step at a time (in its own process group when `detached`, as a shell starts a command) and
 * waits for full-unet's training to write its first checkpoint.
 */
const runUntilCheckpoint = async ({ args, dir, keyOf }: Awaited<ReturnType<typeof setUp>>, detached = false) => {
  const [node, ...argv] = nodeCommand(cli, args("cache", "--executor", "processes", "--concurrency", "1"))
  const cache = join(dir, "cache")
  const checkpoint = join(cache, "partial", keyOf("full-unet/train"), "checkpoints", "latest.json")
  const parent = spawn(node!, argv, {
    cwd: repoRoot,
    env: { ...process.env, CI: "true", FILE_STEPS_DELAY_MS: "40" },
    stdio: ["ignore", "pipe", "pipe"],
    detached
  })
  let output = ""
  parent.stdout.on("data", (d) => (output += String(d)))
  parent.stderr.on("data", (d) => (output += String(d)))
  const exited = new Promise<number | null>((resolve) => parent.on("close", (code) => resolve(code)))
  const deadline = Date.now() + 90_000
  while (!existsSync(checkpoint)) {
    if (Date.now() > deadline) throw new Error(`no checkpoint; output:\n${output}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  return { cache, checkpoint, exited, output: () => output, parent }
}

describe("sardine run --executor processes", () => {
  it("runs the trainings and generations in two step workers, two at once, with the same outputs as the local executor", async () => {
    const { args, dir, plan } = await setUp(40)
    const env = { FILE_STEPS_DELAY_MS: "150" }
    const local = await run(cli, args("local"), { env })
    expect(local.code).toBe(0)
    const processes = await run(cli, args("processes", "--executor", "processes", "--concurrency", "2"), { env })
    expect(processes.code, processes.stderr).toBe(0)
    expect(processes.stdout).toContain("file-study: 13 ran, 0 cached, 0 failed, 0 blocked")
    expect(await outputs(join(dir, "processes"), plan)).toEqual(await outputs(join(dir, "local"), plan))

    // Every training and generation ran in one of two step workers, reused step after step, none of the other steps;
    // all gone.
    const started = await stepProcesses(join(dir, "processes"))
    const childSteps = plan.steps.filter((s) => s.kind === "train" || s.kind === "generate")
    expect(started.map((p) => p.key).sort()).toEqual(childSteps.map((s) => s.key).sort())
    expect(new Set(started.map((p) => p.pid)).size).toBe(2)
    expect(started.some((p) => alive(p.pid))).toBe(false)
    // Two steps ran in workers at once, never more than two steps in all: the run's lines, which start a step before
    // its worker does and end it after.
    const running = { worker: 0, all: 0 }
    const most = { worker: 0, all: 0 }
    for (const [, what, kind] of processes.stderr.matchAll(/^\[[\d:]+\] (start|done) +([\w-]+) /gm)) {
      const change = what === "start" ? 1 : -1
      if (kind === "train" || kind === "generate") running.worker += change
      running.all += change
      most.worker = Math.max(most.worker, running.worker)
      most.all = Math.max(most.all, running.all)
    }
    expect(running).toEqual({ worker: 0, all: 0 })
    expect(most).toEqual({ worker: 2, all: 2 })
    // A child's progress shows in the run's own lines.
    expect(processes.stderr).toMatch(/train +full-unet\/train .*40\/40 steps \(100%\)/)
    expect(processes.stderr).toMatch(/done +train +lora-unet\/train/)

    const again = await run(cli, args("processes", "--executor", "processes"), { env })
    expect(again.code).toBe(0)
    expect(again.stdout).toContain("file-study: 0 ran, 13 cached")
  })

  it("a training that fails in its worker is named with the end of its output; what needs it is blocked, the rest finishes, the worker serves on", async () => {
    const { args, dir, keyOf } = await setUp(6)
    const failed = await run(cli, args("cache", "--executor", "processes", "--concurrency", "1"), { env: { FILE_STEPS_FAIL_TRAIN: "full-unet/train" } })
    expect(failed.code).toBe(1)
    const logs = await stepProcesses(join(dir, "cache"))
    const log = logs.find((p) => p.key === keyOf("full-unet/train"))!
    expect(failed.stderr).toMatch(
      new RegExp(
        `full-unet/train: failed — .*failing on purpose \\(FILE_STEPS_FAIL_TRAIN\\); last lines of ${
          join(dir, "cache", "jobs", "logs", `${log.key}.pid${log.pid}.out`)
        }:`
      )
    )
    // The step's own error is in its log; the same worker ran the steps after it.
    expect(failed.stderr).toMatch(/\n\s*error: .*failing on purpose \(FILE_STEPS_FAIL_TRAIN\)/)
    expect(new Set(logs.map((p) => p.pid))).toEqual(new Set([log.pid]))
    expect(logs.length).toBe(4)
    expect(failed.stderr).toContain("full-unet/generate: blocked — needs full-unet/train (failed)")
    expect(failed.stdout).toContain("9 ran, 0 cached, 1 failed, 3 blocked")
    expect(existsSync(join(dir, "cache", "steps", keyOf("lora-unet/evaluate"), "sardine-step.json"))).toBe(true)
  })

  it("a worker killed mid-training fails that training alone; a new worker serves the other steps, the next run resumes it", async () => {
    const study = await setUp(60)
    const { args, keyOf } = study
    const { cache, checkpoint, exited, output, parent } = await runUntilCheckpoint(study)
    // The worker training it holds the step's lock: its pid is the lock owner's.
    const { pid } = JSON.parse(await readFile(join(cache, "locks", keyOf("full-unet/train"), "owner.json"), "utf8")) as { pid: number }
    expect(pid).not.toBe(parent.pid)
    process.kill(pid, "SIGKILL")
    expect(await exited, output()).toBe(1)
    expect(output()).toContain(
      `full-unet/train: failed — its process was killed by SIGKILL; last lines of ${join(cache, "jobs", "logs", `${keyOf("full-unet/train")}.pid${pid}.out`)}`
    )
    expect(output()).toContain("full-unet/generate: blocked — needs full-unet/train (failed)")
    expect(output()).toContain("9 ran, 0 cached, 1 failed, 3 blocked")
    const workers = await stepProcesses(cache)
    const others = workers.filter((p) => p.pid !== pid)
    expect(others.map((p) => p.key)).toContain(keyOf("lora-unet/generate"))
    expect(workers.some((p) => alive(p.pid))).toBe(false)
    expect(existsSync(checkpoint)).toBe(true)

    const resumed = await run(cli, args("cache", "--executor", "processes"))
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(resumed.stderr).toMatch(/train +full-unet\/train: resuming at iteration \d+/)
    expect(resumed.stdout).toContain("4 ran, 9 cached")
  })

  it("Ctrl-C at the terminal stops the run and its step processes cleanly (exit 130); the next run resumes the training", async () => {
    const study = await setUp(60)
    const { args, keyOf } = study
    // Its own process group, as a shell gives a command: the terminal's Ctrl-C signals the whole group.
    const { cache, checkpoint, exited, output, parent } = await runUntilCheckpoint(study, true)
    process.kill(-parent.pid!, "SIGINT")
    expect(await exited, output()).toBe(130)
    expect(output()).toMatch(/killed +train +full-unet\/train/)
    expect(output()).not.toContain("quitting without cleaning up")
    expect((await stepProcesses(cache)).some((p) => alive(p.pid))).toBe(false)
    expect(existsSync(join(cache, "steps", keyOf("full-unet/train")))).toBe(false)
    expect(existsSync(join(cache, "locks", keyOf("full-unet/train")))).toBe(false)
    expect(existsSync(checkpoint)).toBe(true)

    const resumed = await run(cli, args("cache", "--executor", "processes"))
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(resumed.stderr).toMatch(/train +full-unet\/train: resuming at iteration \d+/)
  })
})
