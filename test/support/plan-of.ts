import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { dirname } from "node:path"
import type { Declaration } from "../../framework/declaration/experiment.ts"
import { planWithFingerprints } from "../../framework/plan/input-fingerprints.ts"
import type { Plan } from "../../framework/plan/step.ts"
import type { EngineName } from "../../framework/services/engine.ts"

/**
 * The plan `sardine` computes for the declaration written to `file`: its keys include the
 * fingerprints of the declared folders (the tiny pipeline's, …), so tests find outputs by key; for the
 * `engine` given (`--engine`), else tfjs.
 */
export const planOf = (file: string, declaration: Declaration, engine?: EngineName): Promise<Plan> =>
  Effect.runPromise(
    planWithFingerprints({ file, directory: dirname(file), declaration }, engine === undefined ? {} : { engine }).pipe(
      Effect.map((p) => p.plan),
      Effect.provide(NodeContext.layer)
    )
  )
