import { Effect, Option } from "effect"
import { loadDeclaration } from "../declaration/load.ts"
import type { PlanOptions } from "../plan/input-fingerprints.ts"
import { enginePlan } from "./engine-option.ts"

export interface LoadPlanOptions extends Omit<PlanOptions, "engine"> {
  /** `--engine`; none: the declaration's `engine`, else tfjs. */
  readonly engine?: Option.Option<"tfjs" | "torch" | "auto">
  /** Refuse first every field the engine cannot honour (commands that plan or run steps do). */
  readonly check?: boolean
  /** Leave the notes on gone folders unprinted (a command planning the same file again). */
  readonly quiet?: boolean
}

/**
 * A declaration file and its plan on its engine, with the fingerprints of the folders it declares in
 * the keys, as every command that looks into the cache must compute them. Notes on a declared folder
 * that is gone go to stderr; `notes` are the engine's (steps another engine computes).
 */
export const loadPlan = (file: string, { check = false, engine = Option.none(), ...options }: LoadPlanOptions = {}) =>
  Effect.gen(function*() {
    const loaded = yield* loadDeclaration(file)
    return { loaded, ...(yield* enginePlan(loaded, engine, { ...options, check })) }
  })
