import { existsSync } from "node:fs"
import { readFile, readdir } from "node:fs/promises"
import { join } from "node:path"
import YAML from "yaml"

/** What a local MLflow folder holds, read straight from MLflow's file-store layout (MLflow's own enum codes). */
export interface LocalRun {
  readonly id: string
  readonly name: string
  readonly status: "RUNNING" | "SCHEDULED" | "FINISHED" | "FAILED" | "KILLED"
  readonly tags: Readonly<Record<string, string>>
  readonly params: Readonly<Record<string, string>>
}

const statuses = ["", "RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"] as const

const readValues = async (dir: string): Promise<Record<string, string>> => {
  if (!existsSync(dir)) return {}
  const out: Record<string, string> = {}
  const walk = async (sub: string) => {
    for (const entry of await readdir(join(dir, sub), { withFileTypes: true })) {
      const key = sub === "" ? entry.name : `${sub}/${entry.name}`
      if (entry.isDirectory()) await walk(key)
      else out[key] = await readFile(join(dir, key), "utf8")
    }
  }
  await walk("")
  return out
}

export const localRuns = async (root: string): Promise<ReadonlyArray<LocalRun>> => {
  const runs: Array<LocalRun> = []
  for (const experiment of await readdir(root, { withFileTypes: true })) {
    if (!experiment.isDirectory() || experiment.name.startsWith(".")) continue
    for (const run of await readdir(join(root, experiment.name), { withFileTypes: true })) {
      const meta = join(root, experiment.name, run.name, "meta.yaml")
      if (!run.isDirectory() || !existsSync(meta)) continue
      const info = YAML.parse(await readFile(meta, "utf8")) as { run_id: string; run_name: string; status: number }
      runs.push({
        id: info.run_id,
        name: info.run_name,
        status: statuses[info.status] as LocalRun["status"],
        tags: await readValues(join(root, experiment.name, run.name, "tags")),
        params: await readValues(join(root, experiment.name, run.name, "params"))
      })
    }
  }
  return runs.sort((a, b) => a.name.localeCompare(b.name))
}
