import { Command, Options } from "@effect/cli"
import type { FileSystem } from "@effect/platform"
import { Console, Effect, Either } from "effect"
import type { Step } from "../plan/step.ts"
import { type CacheError, cacheLayout, type OutputState } from "../runner/cache.ts"
import { describeOwner, readLock, staleness } from "../runner/lock.ts"
import { resumableKinds, resumePoint } from "../runner/resume-point.ts"
import { outputStates } from "../runner/runner.ts"
import { describeAllocation, ExecutorFactory, type StepJob } from "../services/executor.ts"
import { cacheDirOption } from "./cache-dir.ts"
import { declarationFile } from "./declaration-file.ts"
import { loadPlan } from "./declaration-plan.ts"
import { engineOption } from "./engine-option.ts"

const json = Options.boolean("json").pipe(Options.withDescription("Print the status as JSON"))

/** Where a step stands, most settled first. */
type StepState =
  | { readonly state: "cached" }
  | { readonly state: "damaged"; readonly problems: ReadonlyArray<string> }
  | { readonly state: "running"; readonly owner: string }
  /** A lock whose owner cannot be read: no run takes it over, so it is shown with how to clear it. */
  | { readonly state: "locked"; readonly reason: string }
  | { readonly state: "resumable"; readonly resumeFrom: number }
  | { readonly state: "pending" }

const stateText = (s: StepState): string => {
  switch (s.state) {
    case "cached":
    case "pending":
      return s.state
    case "damaged":
      return "damaged (run or verify --repair runs it again)"
    case "running":
      return `running (${s.owner})`
    case "locked":
      return s.reason
    case "resumable":
      return `resumable from step ${s.resumeFrom}`
  }
}

const stateOf = (cacheDir: string, step: Step, output: OutputState): Effect.Effect<StepState, CacheError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (output._tag === "done") return { state: "cached" } as const
    if (output._tag === "damaged") return { state: "damaged", problems: output.problems } as const
    const cache = cacheLayout(cacheDir)
    const lock = yield* readLock(cache.lock(step.key)).pipe(Effect.either)
    if (Either.isLeft(lock)) return { state: "locked", reason: lock.left.message } as const
    if (lock.right._tag === "owned" && (yield* staleness(lock.right.owner, lock.right.heartbeatAgeMs)) === undefined) {
      return { state: "running", owner: describeOwner(lock.right.owner) } as const
    }
    const from = resumableKinds.has(step.kind) ? yield* resumePoint(cache.partial(step.key)) : undefined
    return from === undefined ? { state: "pending" } as const : { state: "resumable", resumeFrom: from } as const
  })

/**
 * `sardine status`: for each step, whether its output is cached (its files' sizes as committed),
 * damaged, running, a training resumable from a checkpoint, or pending; and, when it was submitted
 * as a SLURM job, the job's id and state now (PENDING, RUNNING, COMPLETED, FAILED, …) and what it asked
 * for (GPUs, CPUs, memory).
 */
export const statusCommand = Command.make(
  "status",
  { file: declarationFile, cacheDir: cacheDirOption, json, engine: engineOption },
  ({ cacheDir, engine, file, json }) =>
    Effect.gen(function*() {
      const { plan } = yield* loadPlan(file, { engine, cacheDir })
      const outputs = yield* outputStates(plan, cacheDir)
      const states = yield* Effect.forEach(plan.steps, (s) => stateOf(cacheDir, s, outputs.get(s.id)!))
      const slurm = yield* (yield* ExecutorFactory).open({ _tag: "slurm" })
      const jobs: ReadonlyMap<string, StepJob> = yield* slurm.jobs(plan, cacheDir)
      if (json) {
        const steps = plan.steps.map((s, i) => ({
          id: s.id,
          kind: s.kind,
          key: s.key,
          cached: states[i]!.state === "cached",
          ...states[i],
          ...(jobs.has(s.id) ? { job: jobs.get(s.id) } : {})
        }))
        return yield* Console.log(JSON.stringify({ name: plan.name, cacheDir, steps }, null, 2))
      }
      const rows = plan.steps.map((s, i) => {
        const job = jobs.get(s.id)
        return [
          s.kind,
          s.id,
          stateText(states[i]!),
          job === undefined ? "" : `job ${job.jobId} ${job.state}`,
          job?.allocation === undefined ? "" : describeAllocation(job.allocation)
        ]
      })
      const header = ["kind", "step", "status", "job", "allocation"]
      const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)))
      const line = (cells: ReadonlyArray<string>) => cells.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd()
      const count = (state: StepState["state"]) => states.filter((s) => s.state === state).length
      const others = (["damaged", "running", "locked", "resumable"] as const).filter((s) => count(s) > 0).map((s) => `, ${count(s)} ${s}`).join("")
      const problems = plan.steps.flatMap((s, i) => {
        const state = states[i]!
        return state.state === "damaged" ? [`${s.id}: ${state.problems.join("; ")}`] : []
      })
      yield* Console.log([
        line(header),
        ...rows.map(line),
        "",
        ...(problems.length === 0 ? [] : ["damaged outputs:", ...problems.map((p) => `  ${p}`), ""]),
        `${plan.name}: ${plan.steps.length} steps, ${count("cached")} cached${others}, ${count("pending")} pending (cache: ${cacheDir})`
      ].join("\n"))
    })
).pipe(
  Command.withDescription(
    "Show each step of a declaration: cached, damaged (an output file changed size since it was committed), running, locked (a lock whose owner cannot be read, with how to clear it), " +
      "resumable from step N (an interrupted training), or pending; and its SLURM job's id, state and allocation (GPUs, CPUs, memory)."
  )
)
