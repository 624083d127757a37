import { Effect, Option, Schema } from "effect"
import type { LoadedDeclaration } from "../declaration/load.ts"
import { servesExperiment } from "../declaration/replicates.ts"
import type { Plan, StepOf } from "../plan/step.ts"
import { cacheLayout, isDone } from "../runner/cache.ts"
import { type EngineName, engineNames } from "../services/engine.ts"
import { enginePlan } from "./engine-option.ts"

/** An experiment trained by both engines, asked for without `--engine`: both folders, and the flag that picks one. */
export class TrainedByBothEngines extends Schema.TaggedError<TrainedByBothEngines>()("TrainedByBothEngines", {
  experiment: Schema.String,
  folders: Schema.Array(Schema.Struct({ engine: Schema.Literal(...engineNames), folder: Schema.String }))
}) {
  override get message() {
    return `${this.experiment} was trained by both engines (${this.folders.map((t) => `${t.engine}: ${t.folder}`).join(", ")}); ` +
      `pick one with ${this.folders.map((t) => `--engine ${t.engine}`).join(" or ")}`
  }
}

/** The experiment's train step in the declaration's plan: the one whose output is the trained model. */
export const trainStepOf = (
  steps: ReadonlyArray<StepOf<"train"> | { readonly kind: string }>,
  experiment: string
): StepOf<"train"> | undefined =>
  steps.find((s): s is StepOf<"train"> => s.kind === "train" && servesExperiment((s as StepOf<"train">).experiments, experiment))

/** A declaration's plan on one engine. */
export interface EnginePlan {
  readonly engine: EngineName
  readonly plan: Plan
}

/**
 * The plans a command that reads a training from the cache looks in: the default engine's (`first`) and,
 * without `--engine`, the other engine's, since the engine is part of a train step's key.
 */
export const lookupPlans = (
  loaded: LoadedDeclaration,
  engineChoice: Option.Option<unknown>,
  first: EnginePlan,
  cacheDir: string
) =>
  Effect.map(
    Effect.forEach(
      Option.isSome(engineChoice) ? [] : engineNames.filter((e) => e !== first.engine),
      (other) => enginePlan(loaded, Option.some(other), { check: false, cacheDir, quiet: true })
    ),
    (others): ReadonlyArray<EnginePlan> => [first, ...others.map(({ engine, plan }) => ({ engine, plan }))]
  )

/**
 * The plan in which `experiment`'s training is finished, whichever engine made it (`plans` as `lookupPlans`
 * gives them); both having made it is refused. When neither did, the default engine's plan, whose step then
 * says it has not finished.
 */
export const trainedPlan = (plans: ReadonlyArray<EnginePlan>, experiment: string, cacheDir: string) =>
  Effect.gen(function*() {
    const cache = cacheLayout(cacheDir)
    const trained: Array<EnginePlan & { readonly folder: string }> = []
    for (const candidate of plans) {
      const step = trainStepOf(candidate.plan.steps, experiment)
      if (step !== undefined && (yield* isDone(cache, step.key))) trained.push({ ...candidate, folder: cache.done(step.key) })
    }
    if (trained.length > 1) return yield* new TrainedByBothEngines({ experiment, folders: trained.map(({ engine, folder }) => ({ engine, folder })) })
    return trained[0] ?? plans[0]!
  })
