import { Effect, Schema } from "effect"
import type { StepResources } from "../declaration/resources.ts"
import type { Plan, Step, StepKind, StepOf } from "../plan/step.ts"
import type { StepTracking } from "./tracking.ts"

/** What a step implementation gets: its step, where to write, where its inputs are. */
export interface StepContext<K extends StepKind = StepKind> {
  readonly step: StepOf<K>
  readonly plan: Plan
  /**
   * Where the step writes its output. It survives interruptions (checkpoints written here let a
   * rerun resume) and becomes the cached output when the step returns.
   */
  readonly workDir: string
  /** True when the work folder already held files from an interrupted run. */
  readonly resumed: boolean
  /** Resolves a path written in the declaration (relative to the declaration file). */
  readonly resolvePath: (path: string) => string
  /** Output folders of the inputs with this role, in plan order. */
  readonly inputs: (role: string) => ReadonlyArray<{ readonly step: Step; readonly dir: string }>
  /** The single input with this role; a plan without it is a bug in the compiler. */
  readonly input: (role: string) => { readonly step: Step; readonly dir: string }
  readonly progress: (done: number, total: number, unit: string) => Effect.Effect<void>
  readonly log: (message: string) => Effect.Effect<void>
  /** Logging to the MLflow runs of the experiments this step serves. */
  readonly tracking: StepTracking
  /** What the declaration lets this step use (`resources`; a train step reads `processes`). */
  readonly resources: StepResources
}

/** A step failed for a reason its implementation could name. */
export class StepFailed extends Schema.TaggedError<StepFailed>()("StepFailed", {
  step: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.step}: ${this.reason}`
  }
}

/** What a step handler fails with: a tagged error that names what went wrong (EngineError, DatasetError, StepFailed, a PlatformError…). */
export interface StepError {
  readonly _tag: string
  readonly message: string
}

export type StepHandler<K extends StepKind, R> = (context: StepContext<K>) => Effect.Effect<void, StepError, R>

/** One implementation per step kind: the production ones call the services; tests bring their own. */
export type StepHandlers<R> = { readonly [K in StepKind]: StepHandler<K, R> }
