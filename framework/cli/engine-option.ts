import { Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { resolve } from "node:path"
import type { LoadedDeclaration } from "../declaration/load.ts"
import { checkEngineSupport, chosenEngine, engineNotes } from "../plan/engine-support.ts"
import { planWithFingerprints, type PlanOptions } from "../plan/input-fingerprints.ts"
import { SharedStepConflict, sharedStepConflicts } from "../plan/step-resources.ts"

/** `--engine`, on every command that compiles a declaration's plan (the engine is part of the steps' keys). */
export const engineOption = Options.choice("engine", ["tfjs", "torch", "auto"]).pipe(
  Options.optional,
  Options.withDescription(
    "The engine that computes the steps: tfjs (embedded, CPU / tfjs-node), torch (PyTorch + diffusers worker: `sardine engine --help`), or auto " +
      "(torch when its Python is configured). Default: the declaration's `engine`, else tfjs"
  )
)

/**
 * The plan of a loaded declaration on its engine, with the fingerprints of its declared folders in the
 * keys (input-fingerprints.ts; notes on folders that are gone go to stderr). With `check`, every field the
 * engine cannot honour is refused first (validate, plan, run, step); commands that only find steps in the
 * cache skip that. `notes` are the engine's (steps another engine computes).
 */
export const enginePlan = (
  loaded: LoadedDeclaration,
  option: Option.Option<"tfjs" | "torch" | "auto">,
  options: Omit<PlanOptions, "engine"> & { readonly check: boolean; readonly quiet?: boolean }
) =>
  Effect.gen(function*() {
    const engine = yield* chosenEngine(loaded.declaration, Option.getOrUndefined(option))
    if (options.check) yield* checkEngineSupport(loaded.declaration, engine, (path) => resolve(loaded.directory, path))
    const { check: _, quiet = false, ...planOptions } = options
    const { notes, plan } = yield* planWithFingerprints(loaded, { ...planOptions, engine })
    const conflicts = options.check ? sharedStepConflicts(loaded.declaration, plan) : []
    if (conflicts.length > 0) return yield* new SharedStepConflict({ problems: conflicts })
    if (!quiet) { for (const note of notes) yield* Console.error(`note: ${note}`) }
    return { engine, plan, notes: engineNotes(loaded.declaration, engine) }
  })
