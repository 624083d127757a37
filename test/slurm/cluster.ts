import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { requirePrerequisite } from "../support/prerequisites.ts"
import { repoRoot } from "../support/run-process.ts"

/*
 * A real SLURM cluster of .ci/slurm.sh (one node, or several sharing this host), started in a temporary folder for a test file and
 * stopped afterwards: with accounting (slurmdbd + MariaDB, so sacct answers) or without (sacct
 * answers "Slurm accounting storage is disabled", as on many small clusters). A machine without
 * SLURM's programs fails these tests with the line that says how to install them, never a skip.
 */

// Here, not per test: a machine without SLURM fails the test file once, with the line that says why.
requirePrerequisite("slurm")

const exec = promisify(execFile)
const script = join(repoRoot, ".ci/slurm.sh")

export interface ClusterOptions {
  readonly accounting: boolean
  /** Seconds the controller keeps an ended job (SLURM's MinJobAge; default 300). */
  readonly minJobAge?: number
  /** Compute nodes (default 1; several share this host, one slurmd each). */
  readonly nodes?: number
}

/** A job as SLURM's records show it: sacct with accounting, scontrol (the controller's memory) without. */
export interface RecordedJob {
  readonly name: string
  readonly state: string
  /** ISO-like local times, comparable as text. */
  readonly start: string
  readonly end: string
  readonly cpus: string
  readonly memory: string
  readonly timeLimit: string
}

export interface Cluster {
  readonly accounting: boolean
  /** What SLURM's commands need (SLURM_CONF). */
  readonly env: Readonly<Record<string, string>>
  /** Node-local storage: the compute node sees its own empty folder here, not this machine's. */
  readonly nodeLocal: string
  /** ssh options and the login node's host name for `--ssh`. */
  readonly sshCommand: string
  readonly loginHost: string
  /** Runs a SLURM command (squeue, sacct, …) against the cluster. */
  readonly command: (program: string, args: ReadonlyArray<string>) => Promise<string>
  /** What SLURM recorded of these jobs (each must be known to it). */
  readonly jobs: (ids: ReadonlyArray<string>) => Promise<Record<string, RecordedJob>>
  readonly stop: () => Promise<void>
}

const fromSacct = (text: string): Record<string, RecordedJob> => {
  const jobs: Record<string, RecordedJob> = {}
  for (const line of text.trim().split("\n")) {
    const fields = line.split("|")
    if (fields.length < 8) throw new Error(`sacct line "${line}" has ${fields.length} of the 8 fields asked for`)
    const [id, name, state, start, end, cpus, memory, timeLimit] = fields as [string, string, string, string, string, string, string, string]
    jobs[id] = { name, state: state.split(" ")[0]!, start, end, cpus, memory, timeLimit }
  }
  return jobs
}

/** `scontrol --oneliner show job <id>`: `Key=value` fields separated by spaces. */
const fromScontrol = (text: string): RecordedJob => {
  const field = (key: string) => new RegExp(`(?:^| )${key}=(\\S*)`).exec(text)?.[1] ?? ""
  return {
    name: field("JobName"),
    state: field("JobState"),
    start: field("StartTime"),
    end: field("EndTime"),
    cpus: field("NumCPUs"),
    memory: field("MinMemoryNode"),
    timeLimit: field("TimeLimit")
  }
}

/** Starts a cluster for this test file. */
export const startCluster = async (options: ClusterOptions): Promise<Cluster> => {
  const dir = await mkdtemp(join(tmpdir(), "sardine-slurm-"))
  const args = [
    script,
    "start",
    dir,
    ...(options.accounting ? [] : ["--no-accounting"]),
    ...(options.minJobAge === undefined ? [] : ["--min-job-age", String(options.minJobAge)]),
    ...(options.nodes === undefined ? [] : ["--nodes", String(options.nodes)])
  ]
  try {
    await exec("bash", args, { timeout: 900_000 })
  } catch (error) {
    await exec("bash", [script, "stop", dir]).catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
    throw error
  }
  const envFile = join(dir, "cluster.env")
  if (!existsSync(envFile)) throw new Error(`.ci/slurm.sh start ${dir} left no cluster.env`)
  const conf = /SLURM_CONF=(\S+)/.exec(await readFile(envFile, "utf8"))![1]!.replace(/^'|'$/g, "")
  const env = { SLURM_CONF: conf }
  const command = async (program: string, commandArgs: ReadonlyArray<string>) =>
    (await exec(program, [...commandArgs], { env: { ...process.env, ...env } })).stdout
  return {
    accounting: options.accounting,
    env,
    nodeLocal: join(dir, "node-local"),
    sshCommand: `ssh -F ${join(dir, "ssh/config")}`,
    loginHost: "sardine-login",
    command,
    jobs: async (ids) => {
      if (options.accounting) {
        return fromSacct(
          await command("sacct", [
            "--noheader",
            "--parsable2",
            "--allocations",
            `--jobs=${ids.join(",")}`,
            "--format=JobID,JobName,State,Start,End,ReqCPUS,ReqMem,Timelimit"
          ])
        )
      }
      const jobs: Record<string, RecordedJob> = {}
      for (const id of ids) jobs[id] = fromScontrol(await command("scontrol", ["--oneliner", "show", "job", id]))
      return jobs
    },
    stop: async () => {
      await exec("bash", [script, "stop", dir])
      await rm(dir, { recursive: true, force: true })
    }
  }
}
