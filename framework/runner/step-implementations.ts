import { Context } from "effect"
import type { Effect } from "effect"
import type { EngineName } from "../services/engine.ts"
import type { StepHandlers } from "./step-handler.ts"

/** The step implementations `sardine run` uses; the composition root provides the production set. */
export class StepImplementations extends Context.Tag("sardine/StepImplementations")<StepImplementations, {
  readonly handlers: StepHandlers<never>
  /**
   * The tensor backends the handlers compute on with these engines, recorded on every run ("wasm", "cpu",
   * "torch 2.15.0 on cuda:0 …"). An effect: finding it may start the engines, which only `run` should pay for.
   */
  readonly backend: (engines: ReadonlyArray<EngineName>) => Effect.Effect<string | undefined, unknown>
}>() {}
