import { type Declaration, experimentsOf } from "../declaration/experiment.ts"
import { experimentOfReplicate } from "../declaration/replicates.ts"
import { resourcesFor, type StepResources } from "../declaration/resources.ts"
import type { Step } from "./step.ts"

/**
 * What a step of a plan asks of the machines: the study's resources, then those of the experiment the step
 * belongs to (the first that needs it, for a step several experiments share).
 */
export const stepResources = (declaration: Declaration, step: Step): StepResources => {
  const study = declaration.kind === "study" ? declaration.resources : undefined
  // A replicate's steps (`<name>#<r>`) ask what their experiment declares.
  const experiment = experimentOfReplicate(step.experiments[0] ?? "")
  const own = experimentsOf(declaration).find((e) => e.name === experiment)?.resources
  return resourcesFor([study, own], step.kind)
}
