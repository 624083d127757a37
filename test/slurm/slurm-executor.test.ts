import { Effect } from "effect"
import { existsSync } from "node:fs"
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, expect, it } from "vitest"
import { canonicalJsonPretty } from "../../framework/declaration/canonical-json.ts"
import { decodeDeclaration, encodeDeclaration } from "../../framework/declaration/decode.ts"
import type { StepManifest } from "../../framework/runner/cache.ts"
import { planOf } from "../support/plan-of.ts"
import { cacheOutputs as outputs } from "../support/cache-outputs.ts"
import type { Plan } from "../../framework/plan/step.ts"
import { fileStudy } from "../support/declarations.ts"
import { localRuns } from "../support/local-mlruns.ts"
import { repoRoot, run, start, type Running } from "../support/run-process.ts"
import { type Cluster, type ClusterOptions, startCluster } from "./cluster.ts"

/** The real CLI with the small file-working steps; SLURM jobs run it too (SARDINE_SLURM_ENTRY). */
const cli = `${repoRoot}/test/runner/sardine-with-file-steps.ts`
const minutes = (n: number) => n * 60_000

let cluster: Cluster
/** Folders the tests made, removed at the end. */
const made: Array<string> = []

const env = (extra: Record<string, string> = {}) => ({
  ...cluster.env,
  SARDINE_SLURM_ENTRY: cli,
  // Tiny jobs on a busy machine: look at the queue often.
  SARDINE_SLURM_POLL_MS: "250",
  ...extra
})

/** A study of tiny file-working steps, with resources for some step kinds. */
const setUp = async (trainSteps = 6, trainTime = "10") => {
  const dir = await mkdtemp(join(tmpdir(), "sardine-slurm-test-"))
  made.push(dir)
  const declaration = await Effect.runPromise(decodeDeclaration({
    ...fileStudy(trainSteps),
    resources: { train: { memory: "300M", time: trainTime }, report: { cpus: 2 } }
  }))
  const file = join(dir, "study.json")
  await writeFile(file, canonicalJsonPretty(encodeDeclaration(declaration)))
  const plan = await planOf(file, declaration)
  const tracking = join(dir, "mlruns")
  const slurm = (
    cache: string,
    extra: ReadonlyArray<string> = []
  ) => ["run", file, "--cache-dir", cache, "--tracking-uri", tracking, "--executor", "slurm", ...extra]
  return { dir, file, plan, tracking, slurm }
}

const stepOf = (plan: Plan, id: string) => plan.steps.find((s) => s.id === id)!

const manifest = async (cache: string, key: string) => JSON.parse(await readFile(join(cache, "steps", key, "sardine-step.json"), "utf8")) as StepManifest

/** The job record of each submitted step, by step id. */
const jobRecords = async (cache: string): Promise<Record<string, { jobId: string; ssh?: string }>> => {
  const dir = join(cache, "jobs")
  if (!existsSync(dir)) return {}
  const records: Record<string, { jobId: string; stepId: string; ssh?: string }> = {}
  for (const name of (await readdir(dir)).filter((n) => n.endsWith(".json") && n !== "shared-cache.json")) {
    const record = JSON.parse(await readFile(join(dir, name), "utf8")) as { jobId: string; stepId: string; ssh?: string }
    records[record.stepId] = record
  }
  return records
}

/** Jobs among `ids` that SLURM still has queued, running or completing. */
const inQueue = async (ids: ReadonlyArray<string>): Promise<ReadonlyArray<string>> => {
  try {
    const text = await cluster.command("squeue", ["--noheader", `--jobs=${ids.join(",")}`, "--format=%i %T"])
    return text.trim().split("\n").filter((l) => l.trim().length > 0)
  } catch (error) {
    if (/Invalid job id/.test(String((error as { stderr?: string }).stderr))) return []
    throw error
  }
}

/** Jobs among `ids` the controller still holds, ended ones included (squeue --states=all). */
const heldByController = async (ids: ReadonlyArray<string>): Promise<ReadonlyArray<string>> => {
  try {
    const text = await cluster.command("squeue", ["--noheader", "--states=all", `--jobs=${ids.join(",")}`, "--format=%i"])
    return text.trim().split("\n").filter((l) => l.trim().length > 0)
  } catch (error) {
    if (/Invalid job id/.test(String((error as { stderr?: string }).stderr))) return []
    throw error
  }
}

const waitFor = async (condition: () => boolean | Promise<boolean>, what: string, process?: Running) => {
  const deadline = Date.now() + minutes(3)
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${process === undefined ? "" : `; output:\n${process.output()}`}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const mainScenario = async () => {
  const { dir, file, plan, slurm, tracking } = await setUp()
  const cache = join(dir, "cache")
  const first = await run(cli, slurm(cache), { env: env() })
  expect(first.stderr).toContain("the compute nodes see the cache folder")
  expect(first.code).toBe(0)
  expect(first.stdout).toContain(`file-study: ${plan.steps.length} ran, 0 cached, 0 failed, 0 blocked`)

  // One job per step, each named after it, all completed.
  const records = await jobRecords(cache)
  expect(Object.keys(records).sort()).toEqual(plan.steps.map((s) => s.id).sort())
  const ids = Object.values(records).map((r) => r.jobId)
  expect(new Set(ids).size).toBe(plan.steps.length)
  const accounted = await cluster.jobs(ids)
  for (const step of plan.steps) {
    const job = accounted[records[step.id]!.jobId]!
    expect(job.name).toBe(`sardine:${step.id}`)
    expect(job.state).toBe("COMPLETED")
  }

  // Dependency order, by the steps' own clocks and by SLURM's.
  for (const step of plan.steps) {
    const mine = await manifest(cache, step.key)
    for (const input of step.inputs) {
      const theirs = await manifest(cache, stepOf(plan, input.step).key)
      expect(Date.parse(mine.startedAt)).toBeGreaterThanOrEqual(Date.parse(theirs.finishedAt))
      expect(accounted[records[step.id]!.jobId]!.start >= accounted[records[input.step]!.jobId]!.end).toBe(true)
    }
  }

  // The declared resources reached SLURM: train 300M and 10 minutes, report 2 CPUs, the rest the defaults.
  const train = accounted[records["full-unet/train"]!.jobId]!
  expect([train.memory, train.timeLimit, train.cpus]).toEqual(["300M", "00:10:00", "1"])
  expect(accounted[records.report!.jobId]!.cpus).toBe("2")

  // The jobs computed what the local runner computes.
  const local = join(dir, "local-cache")
  expect((await run(cli, ["run", file, "--cache-dir", local, "--tracking-uri", join(dir, "local-mlruns")])).code).toBe(0)
  expect(await outputs(cache, plan)).toEqual(await outputs(local, plan))

  // Jobs logged to the runs the submitting process opened: one per experiment and the study, all finished.
  expect((await localRuns(tracking)).map((r) => [r.name, r.status])).toEqual([
    ["baseline", "FINISHED"],
    ["file-study", "FINISHED"],
    ["full-unet", "FINISHED"],
    ["lora-unet", "FINISHED"]
  ])

  const second = await run(cli, slurm(cache), { env: env() })
  expect(second.code).toBe(0)
  expect(second.stdout).toContain(`file-study: 0 ran, ${plan.steps.length} cached, 0 failed, 0 blocked`)
  expect(second.stderr).not.toContain("submitted")
  expect(await jobRecords(cache)).toEqual(records)

  const status = await run(cli, ["status", file, "--cache-dir", cache], { env: env() })
  expect(status.code).toBe(0)
  for (const step of plan.steps) {
    expect(status.stdout).toMatch(new RegExp(`${step.kind}\\s+${step.id}\\s+cached\\s+job ${records[step.id]!.jobId} COMPLETED`))
  }
}

const failedJobScenario = async () => {
  const { dir, plan, slurm, tracking } = await setUp()
  const cache = join(dir, "cache")
  const result = await run(cli, slurm(cache), { env: env({ FILE_STEPS_FAIL_TRAIN: "full-unet/train" }) })
  expect(result.code).toBe(1)
  const records = await jobRecords(cache)
  const trainJob = records["full-unet/train"]!.jobId
  expect(result.stderr).toContain(`full-unet/train: failed — job ${trainJob} ended FAILED (exit code 1:0); last lines of`)
  expect(result.stderr).toMatch(/\| .*full-unet\/train: failing on purpose \(FILE_STEPS_FAIL_TRAIN\)/)
  expect(result.stderr).toContain("full-unet/generate: blocked — needs full-unet/train (failed)")
  expect(result.stderr).toContain("full-unet/evaluate: blocked — needs full-unet/generate (blocked)")
  expect(result.stderr).toContain("report: blocked")
  for (const id of ["lora-unet/evaluate", "baseline/evaluate"]) {
    expect(existsSync(join(cache, "steps", stepOf(plan, id).key, "metrics.json"))).toBe(true)
  }
  // SLURM dropped the jobs waiting for the failed one: nothing of this study is left in the queue.
  await waitFor(async () => (await inQueue(Object.values(records).map((r) => r.jobId))).length === 0, "an empty queue")
  expect((await cluster.jobs([records["full-unet/generate"]!.jobId]))[records["full-unet/generate"]!.jobId]!.state).toBe("CANCELLED")
  expect((await localRuns(tracking)).map((r) => [r.name, r.status])).toEqual([
    ["baseline", "FINISHED"],
    ["file-study", "FAILED"],
    ["full-unet", "FAILED"],
    ["lora-unet", "FINISHED"]
  ])
}

/**
 * A step that ran, then `sardine status` once the controller has forgotten its job (MinJobAge 2 s;
 * it purges about once a minute): sacct tells how it ended where there is accounting; without, the
 * job can only have ended.
 */
const statusOfForgottenJob = (expected: "COMPLETED" | "ENDED") => async () => {
  const { dir, file, slurm } = await setUp()
  const cache = join(dir, "cache")
  const result = await run(cli, slurm(cache, ["--only", "full-unet/data"]), { env: env() })
  expect(result.code).toBe(0)
  const record = (await jobRecords(cache))["full-unet/data"]
  assert.isDefined(record, "the data step's job record")
  const { jobId } = record
  await waitFor(async () => (await heldByController([jobId])).length === 0, `the controller to forget job ${jobId}`)
  const status = await run(cli, ["status", file, "--cache-dir", cache], { env: env() })
  expect(status.code).toBe(0)
  // The allocation column: what the job asked for (a data step: the defaults).
  expect(status.stdout).toMatch(new RegExp(`full-unet/data\\s+cached\\s+job ${jobId} ${expected}\\s+no GPU, 1 CPU\\n`))
}

const clusterFor = (options: ClusterOptions) => {
  beforeAll(async () => {
    cluster = await startCluster(options)
  }, minutes(15))
  afterAll(async () => {
    await cluster?.stop()
  }, minutes(2))
}

afterAll(() => Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true }))), minutes(2))

describe("the slurm executor on a real one-node cluster without accounting: squeue and the controller's memory must do", () => {
  // sacct answers "Slurm accounting storage is disabled" here; the scenarios that read job states.
  clusterFor({ accounting: false })

  it("runs a study: each step a job after its inputs', outputs in the cache, a second submission runs nothing", mainScenario, minutes(10))
  it("a failed job is reported with its exit code and the end of its log", failedJobScenario, minutes(10))
})

describe("the slurm executor on a cluster without accounting whose controller forgets ended jobs after 2 s", () => {
  clusterFor({ accounting: false, minJobAge: 2 })

  it("status of a job the controller forgot: ENDED", statusOfForgottenJob("ENDED"), minutes(6))
})

describe("the slurm executor on a real one-node cluster with accounting (slurmdbd), whose controller forgets ended jobs after 2 s", () => {
  clusterFor({ accounting: true, minJobAge: 2 })

  it("submits each step as a job after its inputs' jobs; outputs land in the cache; a second submission runs nothing", mainScenario, minutes(10))
  it("a failed job is reported with the end of its log; the steps that need it are dropped, independent ones finish", failedJobScenario, minutes(10))
  it("status of a job the controller forgot: sacct says how it ended", statusOfForgottenJob("COMPLETED"), minutes(6))

  it("a rerun does not submit again the steps whose jobs are still queued or running", async () => {
    const { dir, plan, slurm } = await setUp(40)
    const cache = join(dir, "cache")
    const slow = env({ FILE_STEPS_DELAY_MS: "500" })
    const first = start(cli, slurm(cache), { env: slow })
    await waitFor(() => first.output().includes("start  train"), "a running train job", first)
    // The submitting process dies without cancelling anything: its jobs go on.
    first.child.kill("SIGKILL")
    await first.done
    const submitted = await jobRecords(cache)
    expect(Object.keys(submitted)).toHaveLength(plan.steps.length)

    // Held, the report's job stays queued however slow this machine is; it is released once the rerun has looked.
    const report = submitted.report!.jobId
    await cluster.command("scontrol", ["hold", report])
    const again = start(cli, slurm(cache), { env: slow })
    const seen = `report: job ${report} from an earlier submission is PENDING; not submitting it again`
    await waitFor(() => again.output().includes(seen), "the rerun to find the report's job", again)
    await cluster.command("scontrol", ["release", report])
    const rerun = await again.done
    expect(rerun.code).toBe(0)
    expect(rerun.stderr).not.toContain("submitted")
    expect(await jobRecords(cache)).toEqual(submitted)
    expect(rerun.stdout).toMatch(/file-study: \d+ ran, \d+ cached, 0 failed, 0 blocked/)
    for (const step of plan.steps) expect(existsSync(join(cache, "steps", step.key, "sardine-step.json"))).toBe(true)
  }, minutes(10))

  it("Ctrl-C cancels the queued and running jobs; nothing half-done is committed", async () => {
    const { dir, plan, slurm, tracking } = await setUp(40)
    const cache = join(dir, "cache")
    const submitter = start(cli, slurm(cache), { env: env({ FILE_STEPS_DELAY_MS: "500" }) })
    await waitFor(() => submitter.output().includes("start  train"), "a running train job", submitter)
    const ids = Object.values(await jobRecords(cache)).map((r) => r.jobId)
    const queued = await inQueue(ids)
    expect(queued.some((l) => l.endsWith("PENDING"))).toBe(true)
    expect(queued.some((l) => l.endsWith("RUNNING"))).toBe(true)

    submitter.child.kill("SIGINT")
    const result = await submitter.done
    expect(result.code).toBe(130)
    expect(result.stderr).toMatch(/cancelled jobs [\d, ]+/)
    await waitFor(async () => (await inQueue(ids)).length === 0, "an empty queue")
    const accounted = await cluster.jobs(ids)
    expect(Object.values(accounted).some((j) => j.state === "CANCELLED")).toBe(true)
    expect(existsSync(join(cache, "steps", stepOf(plan, "full-unet/train").key))).toBe(false)
    expect(existsSync(join(cache, "steps", stepOf(plan, "report").key))).toBe(false)
    expect((await localRuns(tracking)).find((r) => r.name === "file-study")!.status).toBe("KILLED")
  }, minutes(10))

  it("a training that SLURM stops at its 1-minute limit is reported as such; the next run resumes it from its checkpoint and finishes", async () => {
    // 400 iterations of 0.5 s cannot end within the limit (SLURM enforces it within about 30 s); the rerun has no delay.
    const { dir, plan, slurm } = await setUp(400, "1")
    const cache = join(dir, "cache")
    const train = stepOf(plan, "full-unet/train")
    const first = await run(cli, slurm(cache), { env: env({ FILE_STEPS_DELAY_MS: "500" }) })
    expect(first.code).toBe(1)
    expect(first.stderr).toMatch(/reached its time limit \(resources\.train\.time "1"\) and was stopped; its checkpoint at step \d+ is kept/)
    const stopped = (await jobRecords(cache))["full-unet/train"]!.jobId
    expect((await cluster.jobs([stopped]))[stopped]!.state).toBe("TIMEOUT")
    expect(existsSync(join(cache, "partial", train.key, "checkpoints", "latest.json"))).toBe(true)
    expect(existsSync(join(cache, "steps", train.key))).toBe(false)

    const second = await run(cli, slurm(cache), { env: env() })
    expect(second.code).toBe(0)
    const resumed = (await jobRecords(cache))["full-unet/train"] as { jobId: string; log: string }
    expect(resumed.jobId).not.toBe(stopped)
    expect(await readFile(resumed.log, "utf8")).toMatch(/resuming at iteration [1-9]\d*/)
    for (const step of plan.steps) expect(existsSync(join(cache, "steps", step.key, "sardine-step.json"))).toBe(true)
  }, minutes(10))

  it("a cache folder the compute nodes do not see is refused before any step is submitted", async () => {
    const { slurm } = await setUp()
    const cache = join(cluster.nodeLocal, `cache-${Date.now()}`)
    made.push(cache)
    const result = await run(cli, slurm(cache), { env: env() })
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`the cache folder ${cache} is not shared with the compute nodes: probe job`)
    expect(result.stderr).toContain("--cache-dir")
    expect(await jobRecords(cache)).toEqual({})
  }, minutes(5))

  it("a job SLURM refuses is reported with sbatch's reason", async () => {
    const { dir, slurm } = await setUp()
    const cache = join(dir, "cache")
    const result = await run(cli, slurm(cache, ["--partition", "no-such-partition"]), { env: env() })
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/sbatch locally: exit 1: .*invalid partition specified: no-such-partition/i)
    expect(await jobRecords(cache)).toEqual({})
  }, minutes(5))

  it("submits through a login node with --ssh", async () => {
    const { dir, file, plan, slurm } = await setUp()
    const cache = join(dir, "cache")
    // SLURM commands run here would find no configuration: only the login node can reach the cluster.
    const viaSsh = {
      SLURM_CONF: join(dir, "no-such-slurm.conf"),
      SARDINE_SLURM_ENTRY: cli,
      SARDINE_SLURM_POLL_MS: "250",
      SARDINE_SSH_COMMAND: cluster.sshCommand
    }
    const result = await run(cli, slurm(cache, ["--ssh", cluster.loginHost, "--only", "full-unet/data"]), { env: viaSsh })
    expect(result.stderr).toContain("the compute nodes see the cache folder")
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(`1 ran, 0 cached, 0 failed, 0 blocked, ${plan.steps.length - 1} not selected`)
    const record = (await jobRecords(cache))["full-unet/data"]!
    expect(record.ssh).toBe(cluster.loginHost)
    expect((await cluster.jobs([record.jobId]))[record.jobId]!.state).toBe("COMPLETED")
    const status = await run(cli, ["status", file, "--cache-dir", cache], { env: viaSsh })
    expect(status.code).toBe(0)
    expect(status.stdout).toMatch(new RegExp(`full-unet/data\\s+cached\\s+job ${record.jobId} COMPLETED`))
  }, minutes(5))
})
