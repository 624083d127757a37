import { Console, Effect } from "effect"
import { loadDeclaration } from "../declaration/load.ts"
import { planWithFingerprints, type PlanOptions } from "../plan/input-fingerprints.ts"

/**
 * A declaration file and its plan, with the fingerprints of the folders it declares in the keys,
 * as every command that looks into the cache must compute them. Notes (a declared folder that is
 * gone) go to stderr.
 */
export const loadPlan = (file: string, options: PlanOptions = {}) =>
  Effect.gen(function*() {
    const loaded = yield* loadDeclaration(file)
    const { notes, plan } = yield* planWithFingerprints(loaded, options)
    for (const note of notes) yield* Console.error(`note: ${note}`)
    return { loaded, plan }
  })
