import { Command, Options } from "@effect/cli"
import { Console, Effect } from "effect"
import { engineOf, type Plan } from "../plan/step.ts"
import { cachedSteps } from "../runner/runner.ts"
import { checkAgainstArchitecture } from "./architecture-check.ts"
import { declarationFile } from "./declaration-file.ts"
import { cacheDirOption } from "./cache-dir.ts"
import { loadPlan } from "./declaration-plan.ts"
import { engineOption } from "./engine-option.ts"
import { formatStepMemory, planMemory, refuseUnfit } from "./resources-plan.ts"

const json = Options.boolean("json").pipe(Options.withDescription("Print the plan as JSON"))

const resources = Options.boolean("resources").pipe(
  Options.withDescription(
    "Also print each train step's memory plan (parameters per component, weights, gradients, optimizer states, activations) and fail when it exceeds resources.train.gpuMemory; and its FLOPs per step, with the estimated time when resources.train.gpu or gpuPeakTflops is declared"
  )
)

/** `data=x, latents=y`; many inputs of one role (the report's) are counted, not listed. */
const inputsText = (inputs: Plan["steps"][number]["inputs"]): string => {
  const roles = [...new Set(inputs.map((i) => i.role))]
  return roles.map((role) => {
    const steps = inputs.filter((i) => i.role === role)
    return steps.length > 3 ? `${role}×${steps.length}` : steps.map((i) => `${role}=${i.step}`).join(", ")
  }).join(", ")
}

const table = (plan: Plan, cached: ReadonlySet<string>): string => {
  const rows = plan.steps.map((s) => [
    cached.has(s.id) ? "cached" : "pending",
    s.kind,
    s.id,
    s.key,
    inputsText(s.inputs),
    s.experiments.length > 1 ? `shared by ${s.experiments.length} experiments` : ""
  ])
  const header = ["status", "kind", "step", "key", "inputs", ""]
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd()
  const pending = plan.steps.length - cached.size
  return [line(header), ...rows.map(line), "", `${plan.steps.length} steps, ${cached.size} cached, ${pending} to run`].join("\n")
}

export const planCommand = Command.make(
  "plan",
  { file: declarationFile, json, resources, cacheDir: cacheDirOption, engine: engineOption },
  ({ cacheDir, engine, file, json, resources }) =>
    Effect.gen(function*() {
      const { engine: chosen, loaded, notes, plan } = yield* loadPlan(file, { engine, check: true, cacheDir })
      yield* checkAgainstArchitecture(loaded, file)
      const cached = yield* cachedSteps(plan, cacheDir)
      // Every plan checks the declared GPU memory; --resources also shows the need.
      const memory = yield* planMemory(loaded, plan)
      if (json) {
        const steps = plan.steps.map((s) => ({ ...s, engine: engineOf(s), cached: cached.has(s.id) }))
        yield* Console.log(JSON.stringify({ name: plan.name, cacheDir, engine: chosen, notes, steps, ...(resources ? { memory } : {}) }, null, 2))
      } else {
        yield* Console.log(table(plan, cached))
        yield* Console.log(`engine: ${chosen}${notes.map((n) => `\nnote: ${n}`).join("")}`)
        if (resources) yield* Console.log(["", ...memory.map(formatStepMemory)].join("\n\n"))
      }
      yield* refuseUnfit(memory)
    })
).pipe(
  Command.withDescription(
    "Show the steps of a declaration, their dependencies, content keys and whether each is cached; with --resources, what each train step needs in GPU memory and compute."
  )
)
