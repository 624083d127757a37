/**
 * Report rendering speed (issue 9's goal: a 10-strategy study with 64 images per strategy renders
 * in under a few seconds). The study is the test study of test/reports with ten strategies, eight
 * prompts × eight seeds (64 images of 64 × 64 per strategy), 500 training steps each: run once
 * through the real runner (production prepare-data, evaluate and report steps; engine stand-ins),
 * then the report is rendered again from the cache several times and timed: reading every
 * evaluation, its evidence, manifest and training log, computing the study's statistics
 * (comparisons with the baseline, best-value tests), laying out tables and SVG charts, shrinking
 * and embedding the grid images, writing report.html, report.md and images/.
 *
 *   npx tsx bench/report.ts [--repeats N]
 *
 * No peer: no other tool renders this report, so the figure stands alone. The machine is shared:
 * the load average is printed with the times.
 */
import { Effect } from "effect"
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { renderStudyReport } from "../framework/steps/reported-study.ts"
import { experimentDirsOf, runReportStudy } from "../test/reports/report-study.ts"
import { reportStudyServices } from "../test/reports/stand-in-steps.ts"

const repeatsAt = process.argv.indexOf("--repeats")
const REPEATS = repeatsAt >= 0 ? Number(process.argv[repeatsAt + 1]) : 5

const folder = mkdtempSync(join(tmpdir(), "sardine-bench-report-"))
try {
  const setUp = performance.now()
  const ran = await runReportStudy(folder, {
    name: "bench-report",
    strategies: 10,
    seenPrompts: 5,
    unseenPrompts: 3,
    seeds: 8,
    trainSteps: 500,
    size: 64,
    referenceImages: 64
  })
  const failed = ran.outcomes.filter((o) => o.status !== "ran")
  if (failed.length > 0) throw new Error(`the study did not run: ${failed.map((o) => `${o.step.id} ${o.status} ${o.detail ?? ""}`).join("; ")}`)
  const reportKey = ran.plan.steps.find((s) => s.kind === "report")!.key
  const manifest = JSON.parse(readFileSync(join(ran.cacheDir, "steps", reportKey, "sardine-step.json"), "utf8")) as { durationMs: number }
  console.log(
    `study: 10 strategies × 64 images, run in ${((performance.now() - setUp) / 1000).toFixed(1)} s; its report step took ${
      (manifest.durationMs / 1000).toFixed(2)
    } s`
  )

  const request = (outDir: string) => ({
    study: "bench-report",
    experiments: experimentDirsOf(ran),
    compare: [],
    cacheDir: ran.cacheDir,
    outDir,
    tracking: {
      target: ran.trackingDir,
      experimentId: ran.runs.experimentId,
      runIds: Object.fromEntries([...ran.runs.experiments].map(([n, r]) => [n, r.runId]))
    }
  })
  const times: Array<number> = []
  for (let i = 0; i < REPEATS; i++) {
    const outDir = join(folder, `report-${i}`)
    const started = performance.now()
    const { rendered } = await Effect.runPromise(renderStudyReport(request(outDir)).pipe(Effect.provide(reportStudyServices)))
    times.push(performance.now() - started)
    if (i === 0) {
      console.log(`report.html ${(statSync(rendered.html).size / 1e6).toFixed(2)} MB, report.md ${(statSync(rendered.markdown).size / 1e3).toFixed(1)} kB`)
    }
  }
  const sorted = [...times].sort((a, b) => a - b)
  console.log(
    `render (${REPEATS} runs): median ${(sorted[Math.floor(sorted.length / 2)]! / 1000).toFixed(2)} s, min ${(sorted[0]! / 1000).toFixed(2)} s, max ${
      (sorted.at(-1)! / 1000).toFixed(2)
    } s`
  )
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(" ")} (2 cores, shared)`)
} finally {
  rmSync(folder, { recursive: true, force: true })
}
