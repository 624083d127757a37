import { Command, Options } from "@effect/cli"
import { Console, Effect, Option, Schema } from "effect"
import { cacheLayout, verifyOutput } from "../runner/cache.ts"
import { outputStates } from "../runner/runner.ts"
import { cacheDirOption } from "./cache-dir.ts"
import { declarationFile } from "./declaration-file.ts"
import { loadPlan } from "./declaration-plan.ts"
import { engineOption } from "./engine-option.ts"
import { executePlan, trackingOptionalOption, trackingUriOption } from "./run.ts"
import { lockLeaseOption } from "./step-options.ts"

export class DamagedOutputs extends Schema.TaggedError<DamagedOutputs>()("DamagedOutputs", {
  steps: Schema.Array(Schema.String)
}) {
  override get message() {
    return `${this.steps.length} cached output(s) damaged: ${this.steps.join(", ")}; \`sardine verify --repair\` runs them again`
  }
}

const repair = Options.boolean("repair").pipe(
  Options.withDescription("Run the damaged steps again (their inputs must be sound), replacing their outputs")
)

const megabytes = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`

/**
 * `sardine verify`: reads back every file of every cached output of a declaration and compares
 * its size and SHA-256 with what the step's manifest recorded when it committed.
 */
export const verifyCommand = Command.make(
  "verify",
  {
    file: declarationFile,
    cacheDir: cacheDirOption,
    repair,
    trackingUri: trackingUriOption,
    trackingOptional: trackingOptionalOption,
    lockLease: lockLeaseOption,
    engine: engineOption
  },
  ({ cacheDir, engine, file, lockLease, repair, trackingOptional, trackingUri }) =>
    Effect.gen(function*() {
      const { engine: chosen, loaded, plan } = yield* loadPlan(file, { engine, check: repair, cacheDir, remember: repair })
      const cache = cacheLayout(cacheDir)
      const states = yield* outputStates(plan, cacheDir)
      const damaged: Array<string> = []
      let checked = 0
      let bytes = 0
      let missing = 0
      let unrecorded = 0
      const started = Date.now()
      for (const step of plan.steps) {
        const state = states.get(step.id)!
        if (state._tag === "missing") {
          missing += 1
          continue
        }
        const problems = state._tag === "damaged" ? state.problems : yield* verifyOutput(cache, state.manifest)
        if (state._tag === "done" && state.manifest.files === undefined) {
          unrecorded += 1
          yield* Console.log(`unchecked  ${step.id}: committed by a sardine that did not record file hashes`)
          continue
        }
        checked += 1
        if (problems.length > 0) {
          damaged.push(step.id)
          yield* Console.log(`damaged    ${step.id}: ${problems.join("; ")}`)
          continue
        }
        const files = state._tag === "done" ? state.manifest.files ?? [] : []
        const size = files.reduce((sum, f) => sum + f.size, 0)
        bytes += size
        yield* Console.log(`ok         ${step.id}  (${files.length} files, ${megabytes(size)})`)
      }
      const seconds = (Date.now() - started) / 1000
      yield* Console.log(
        `${plan.name}: ${checked} cached outputs checked (${megabytes(bytes)} hashed in ${seconds.toFixed(1)} s), ` +
          `${damaged.length} damaged` + (unrecorded > 0 ? `, ${unrecorded} unchecked` : "") + `, ${missing} not in the cache (cache: ${cacheDir})`
      )
      if (damaged.length === 0) return
      if (!repair) return yield* new DamagedOutputs({ steps: damaged })
      yield* Console.log(`repairing: running ${damaged.join(", ")} again`)
      const again = new Set(damaged)
      yield* executePlan({
        loaded,
        plan,
        cacheDir,
        only: damaged,
        force: again,
        forceNewRuns: false,
        concurrency: Option.none(),
        trackingUri,
        trackingOptional,
        executor: { _tag: "local" },
        lockLease,
        engine: chosen
      })
    })
).pipe(
  Command.withDescription(
    "Check every cached output of a declaration: read each file back and compare its size and SHA-256 with those recorded " +
      "when its step committed (`run` and `status` only compare sizes). Exits 1 when an output is damaged; " +
      "with --repair, runs the damaged steps again."
  )
)
