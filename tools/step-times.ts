/**
 * Where a run's time went, from the manifests its steps committed (`durationMs`, `startedAt`): every step's
 * start (seconds after the first step's) and seconds, in the order they started, the total per step kind, and the wall time from the first start to the
 * last finish. For the README's cold-run breakdown, after a cold `sardine run` into an empty cache:
 *
 *   npx sardine run experiments/demo/study.ts
 *   npx tsx tools/step-times.ts [.sardine]
 */
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { cacheLayout, manifestName, type StepManifest } from "../framework/runner/cache.ts"

const root = process.argv[2] ?? ".sardine"
const steps = join(cacheLayout(root).root, "steps")
if (!existsSync(steps)) {
  console.error(`no committed steps under ${steps}`)
  process.exit(1)
}
const manifests = readdirSync(steps)
  .map((key) => join(steps, key, manifestName))
  .filter((file) => existsSync(file))
  .map((file) => JSON.parse(readFileSync(file, "utf8")) as StepManifest)
  .sort((a, b) => a.startedAt.localeCompare(b.startedAt))
const seconds = (ms: number) => (ms / 1000).toFixed(1).padStart(7)
const perKind = new Map<string, { count: number; ms: number }>()
const first = Math.min(...manifests.map((m) => Date.parse(m.startedAt)))
for (const m of manifests) {
  console.log(`at ${seconds(Date.parse(m.startedAt) - first)} s ${seconds(m.durationMs)} s  ${m.kind.padEnd(15)} ${m.experiments.join(", ")}`)
  const kind = perKind.get(m.kind) ?? { count: 0, ms: 0 }
  perKind.set(m.kind, { count: kind.count + 1, ms: kind.ms + m.durationMs })
}
console.log("")
for (const [kind, { count, ms }] of perKind) console.log(`${seconds(ms)} s  ${kind} (${count})`)
if (manifests.length > 0) {
  const last = Math.max(...manifests.map((m) => Date.parse(m.finishedAt)))
  console.log(`${seconds(last - first)} s  wall, first start to last finish (${manifests.length} steps)`)
}
