import { type Declaration, experimentsOf } from "../declaration/experiment.ts"
import { experimentOfReplicate } from "../declaration/replicates.ts"
import { Schema } from "effect"
import { resourcesFor, type StepResources, trainProcesses } from "../declaration/resources.ts"
import { engineOf, type Plan, type Step } from "./step.ts"

/**
 * What a step of a plan asks of the machines: the study's resources, then those of the experiment the step
 * belongs to (the first that needs it, for a step several experiments share).
 */
export const stepResources = (declaration: Declaration, step: Step): StepResources => resourcesOf(declaration, step.experiments[0] ?? "", step)

/** What `experiment` (or one of its replicates, `<name>#<r>`) asks of the machines for `step`. */
const resourcesOf = (declaration: Declaration, experiment: string, step: Step): StepResources => {
  const study = declaration.kind === "study" ? declaration.resources : undefined
  const name = experimentOfReplicate(experiment)
  const own = experimentsOf(declaration).find((e) => e.name === name)?.resources
  return resourcesFor([study, own], step.kind)
}

/** Experiments that share a train step but declare different process counts for it. */
export class SharedStepConflict extends Schema.TaggedError<SharedStepConflict>()("SharedStepConflict", {
  problems: Schema.Array(Schema.String)
}) {
  override get message() {
    return `experiments that share a step ask to run it differently:\n  ${this.problems.join("\n  ")}`
  }
}

/**
 * A train step that several experiments share runs once, on one process count; experiments declaring different
 * counts for it are refused, naming them, rather than the first one's count silently winning. The count stays
 * out of the key (resources.ts: it changes what the step writes by float rounding at most), so that a count
 * changed between runs still finds the cached training.
 */
export const sharedStepConflicts = (declaration: Declaration, plan: Plan): ReadonlyArray<string> =>
  // The tfjs engine trains in one process whatever is declared (its plan refuses a declared count above one).
  plan.steps.filter((step) => step.kind === "train" && engineOf(step) === "torch" && step.experiments.length > 1).flatMap((step) => {
    const counts = step.experiments.map((experiment) => ({ experiment, processes: trainProcesses(resourcesOf(declaration, experiment, step)) }))
    if (new Set(counts.map((c) => c.processes)).size === 1) return []
    const declared = counts.map((c) => `${c.experiment} ${c.processes}`).join(", ")
    return [
      `${step.id}: one training shared by ${counts.map((c) => c.experiment).join(" and ")}, which declare different resources.train.processes (${declared}); ` +
      "declare the same count for all of them"
    ]
  })
