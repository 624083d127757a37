import { Command, Options } from "@effect/cli"
import { Console, Effect } from "effect"
import { loadDeclaration } from "../declaration/load.ts"
import { cachedSteps } from "../runner/runner.ts"
import { ExecutorFactory, type StepJob } from "../services/executor.ts"
import { cacheDirOption } from "./cache-dir.ts"
import { declarationFile } from "./declaration-file.ts"
import { engineOption, enginePlan } from "./engine-option.ts"

const json = Options.boolean("json").pipe(Options.withDescription("Print the status as JSON"))

/**
 * `sardine status`: for each step, whether its output is cached and, when it was submitted as a
 * SLURM job, the job's id and state now (PENDING, RUNNING, COMPLETED, FAILED, …).
 */
export const statusCommand = Command.make("status", { file: declarationFile, cacheDir: cacheDirOption, json, engine: engineOption }, ({ cacheDir, engine, file, json }) =>
  Effect.gen(function*() {
    const { plan } = yield* enginePlan(yield* loadDeclaration(file), engine, { check: false })
    const cached = yield* cachedSteps(plan, cacheDir)
    const slurm = yield* (yield* ExecutorFactory).open({ _tag: "slurm" })
    const jobs: ReadonlyMap<string, StepJob> = yield* slurm.jobs(plan, cacheDir)
    if (json) {
      const steps = plan.steps.map((s) => ({
        id: s.id,
        kind: s.kind,
        key: s.key,
        cached: cached.has(s.id),
        ...(jobs.has(s.id) ? { job: jobs.get(s.id) } : {})
      }))
      return yield* Console.log(JSON.stringify({ name: plan.name, cacheDir, steps }, null, 2))
    }
    const rows = plan.steps.map((s) => {
      const job = jobs.get(s.id)
      return [s.kind, s.id, cached.has(s.id) ? "cached" : "pending", job === undefined ? "" : `job ${job.jobId} ${job.state}`]
    })
    const header = ["kind", "step", "status", "job"]
    const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)))
    const line = (cells: ReadonlyArray<string>) => cells.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd()
    yield* Console.log([
      line(header),
      ...rows.map(line),
      "",
      `${plan.name}: ${plan.steps.length} steps, ${cached.size} cached, ${plan.steps.length - cached.size} pending (cache: ${cacheDir})`
    ].join("\n"))
  })).pipe(Command.withDescription("Show each step of a declaration: cached or pending, and its SLURM job's id and state."))
