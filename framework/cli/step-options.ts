import { Options } from "@effect/cli"
import { Duration } from "effect"
import type { Plan } from "../plan/step.ts"
import { defaultLockLease } from "../runner/lock.ts"

/** The lease of the step locks a command takes, declared by the process that holds them. */
export const lockLeaseOption = Options.integer("lock-lease").pipe(
  Options.withDefault(Duration.toSeconds(defaultLockLease)),
  Options.map((seconds) => Duration.seconds(Math.max(1, seconds))),
  Options.withDescription(
    "Seconds a step lock of this process stays valid without its heartbeat (touched every quarter of it); " +
      "a run on another host takes over a lock silent for longer (one on this host checks the owner's pid instead). Default 600"
  )
)

/** Splits repeatable, comma-separated step options (`--only a,b --only c`). */
export const stepList = (values: ReadonlyArray<string>): ReadonlyArray<string> =>
  values.flatMap((o) => o.split(",")).map((o) => o.trim()).filter((o) => o.length > 0)

/** The names among `names` that match no step id or kind of the plan (`all` matches every step when allowed). */
export const unknownSteps = (plan: Plan, names: ReadonlyArray<string>, allowAll = false): ReadonlyArray<string> =>
  names.filter((o) => !(allowAll && o === "all") && !plan.steps.some((s) => s.id === o || s.kind === o))

/** The ids of the steps `names` designate: by id, by kind, or every step with `all`. */
export const designatedSteps = (plan: Plan, names: ReadonlyArray<string>): ReadonlySet<string> =>
  new Set(plan.steps.filter((s) => names.includes("all") || names.includes(s.id) || names.includes(s.kind)).map((s) => s.id))
