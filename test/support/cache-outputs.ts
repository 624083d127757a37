import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"
import type { Plan } from "../../framework/plan/step.ts"

/** Every committed output file of every step of a plan in a cache, manifests left out (they hold timestamps). */
export const cacheOutputs = async (cacheDir: string, plan: Plan): Promise<Record<string, string>> => {
  const files: Record<string, string> = {}
  for (const step of plan.steps) {
    const dir = join(cacheDir, "steps", step.key)
    for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
      const name = join(entry.parentPath, entry.name).slice(dir.length + 1)
      if (entry.isFile() && name !== "sardine-step.json") files[`${step.id}/${name}`] = await readFile(join(dir, name), "utf8")
    }
  }
  return files
}
