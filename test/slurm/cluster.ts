import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { repoRoot } from "../support/run-process.ts"

/*
 * The real one-node SLURM cluster of .ci/slurm.sh. SARDINE_SLURM_CI_DIR names a cluster already
 * started (`.ci/slurm.sh start <dir>`); otherwise the tests start their own in a temporary folder
 * (installing the packages if missing) and stop it afterwards. Outside CI, a machine without
 * SLURM's programs skips these tests; with CI=true a missing cluster is an error, never a skip.
 */

const exec = promisify(execFile)
const script = join(repoRoot, ".ci/slurm.sh")
export const inCi = process.env.CI === "true"

export interface Cluster {
  /** The folder .ci/slurm.sh keeps the cluster in. */
  readonly dir: string
  /** What SLURM's commands need (SLURM_CONF). */
  readonly env: Readonly<Record<string, string>>
  /** Node-local storage: the compute node sees its own empty folder here, not this machine's. */
  readonly nodeLocal: string
  /** ssh options and the login node's host name for `--ssh`. */
  readonly sshCommand: string
  readonly loginHost: string
  /** Runs a SLURM command (squeue, sacct, …) against the cluster. */
  readonly command: (program: string, args: ReadonlyArray<string>) => Promise<string>
  readonly stop: () => Promise<void>
}

const installed = () =>
  ["slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd", "sshd"].every((p) =>
    ["/usr/sbin", "/usr/bin"].some((dir) => existsSync(join(dir, p))))

const attach = async (dir: string, owned: boolean): Promise<Cluster> => {
  const envFile = join(dir, "cluster.env")
  if (!existsSync(envFile)) throw new Error(`${dir} holds no running cluster (no cluster.env): run .ci/slurm.sh start ${dir}`)
  const conf = /SLURM_CONF=(\S+)/.exec(await readFile(envFile, "utf8"))![1].replace(/^'|'$/g, "")
  const env = { SLURM_CONF: conf }
  const command = async (program: string, args: ReadonlyArray<string>) =>
    (await exec(program, [...args], { env: { ...process.env, ...env } })).stdout
  await command("sinfo", ["--noheader"])
  return {
    dir,
    env,
    nodeLocal: join(dir, "node-local"),
    sshCommand: `ssh -F ${join(dir, "ssh/config")}`,
    loginHost: "sardine-login",
    command,
    stop: async () => {
      if (!owned) return
      await exec("bash", [script, "stop", dir])
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/** The cluster for this test file, or undefined where none can be had (outside CI only). */
export const startCluster = async (): Promise<Cluster | undefined> => {
  const given = process.env.SARDINE_SLURM_CI_DIR
  if (given !== undefined && given !== "") return attach(given, false)
  if (!installed() && !inCi) return undefined
  const dir = await mkdtemp(join(tmpdir(), "sardine-slurm-"))
  try {
    await exec("bash", [script, "start", dir], { timeout: 900_000 })
  } catch (error) {
    await exec("bash", [script, "stop", dir]).catch(() => undefined)
    throw error
  }
  return attach(dir, true)
}

export const clusterAvailable = installed() || inCi || (process.env.SARDINE_SLURM_CI_DIR ?? "") !== ""
