import { Context } from "effect"
import type { Effect } from "effect"
import type { StepHandlers } from "./step-handler.ts"

/** The step implementations `sardine run` uses; the composition root provides the production set. */
export class StepImplementations extends Context.Tag("sardine/StepImplementations")<StepImplementations, {
  readonly handlers: StepHandlers<never>
  /**
   * The tensor backend the handlers compute on, recorded on every run ("wasm", "cpu", …).
   * An effect: finding it may start the engine, which only `run` should pay for.
   */
  readonly backend: Effect.Effect<string | undefined, unknown>
}>() {}
