import { type Declaration, experimentsOf } from "../declaration/experiment.ts"
import { experimentOfReplicate } from "../declaration/replicates.ts"
import { Schema } from "effect"
import { memoryBytes, resourcesFor, type StepResources, timeLimitSeconds, trainNodes, trainProcesses } from "../declaration/resources.ts"
import { engineOf, type Plan, type Step } from "./step.ts"

/**
 * What a step of a plan asks of the machines: the study's resources, then those of the experiment the step
 * belongs to. A step several experiments share runs once (`sharedStepConflicts` refuses what they declare
 * differently): it takes every field one of them declares, and the largest `time` and `memory` declared.
 */
export const stepResources = (declaration: Declaration, step: Step): StepResources => {
  const all = step.experiments.map((experiment) => resourcesOf(declaration, experiment, step))
  if (all.length < 2) return all[0] ?? resourcesOf(declaration, "", step)
  return Object.assign({}, ...all.toReversed(), largest(all, "time", timeLimitSeconds), largest(all, "memory", memoryBytes))
}

/** What `experiment` (or one of its replicates, `<name>#<r>`) asks of the machines for `step`. */
const resourcesOf = (declaration: Declaration, experiment: string, step: Step): StepResources => {
  const study = declaration.kind === "study" ? declaration.resources : undefined
  const name = experimentOfReplicate(experiment)
  const own = experimentsOf(declaration).find((e) => e.name === name)?.resources
  return resourcesFor([study, own], step.kind)
}

/**
 * A limit, not a request for a different computation: a job given more time or memory than one of its
 * experiments asked for computes the same numbers, and one given less fails where that experiment alone would
 * not, so a shared step takes the largest declared (an experiment that declares none leaves it to the others).
 */
const largest = (all: ReadonlyArray<StepResources>, field: "time" | "memory", size: (value: string) => number): Partial<StepResources> => {
  const declared = all.flatMap((r) => r[field] ?? [])
  return declared.length === 0 ? {} : { [field]: declared.reduce((a, b) => (size(b) > size(a) ? b : a)) }
}

/** Experiments that share a step but declare different resources for it. */
export class SharedStepConflict extends Schema.TaggedError<SharedStepConflict>()("SharedStepConflict", {
  problems: Schema.Array(Schema.String)
}) {
  override get message() {
    return `experiments that share a step ask to run it differently:\n  ${this.problems.join("\n  ")}`
  }
}

type Compared = Exclude<keyof StepResources, "time" | "memory">

/**
 * What a field asks of a shared step, per experiment: a torch train step's process layout as the engine reads
 * it (counts and sharding with their defaults; the tfjs engine trains in one process whatever is declared, and
 * the engines refuse more on other steps), every other field as declared, undefined where an experiment leaves
 * it to the others.
 */
const asked = (field: Compared, resources: StepResources, step: Step): string | number | undefined => {
  const layout = step.kind === "train" && engineOf(step) === "torch"
  switch (field) {
    case "processes":
      return layout ? trainProcesses(resources) : undefined
    case "nodes":
      return layout ? trainNodes(resources) : undefined
    case "sharding":
      return layout ? resources.sharding ?? "none" : undefined
    default:
      return resources[field]
  }
}

const compared: ReadonlyArray<Compared> = [
  "processes",
  "nodes",
  "sharding",
  "gpus",
  "cpus",
  "partition",
  "account",
  "qos",
  "constraint",
  "gpuMemory",
  "gpu",
  "gpuPeakTflops",
  "utilisation"
]

/**
 * A step that several experiments share (a training, their data, the report) runs once, as one job on one set
 * of machines; experiments that declare it differently (process layout, GPUs, CPUs, where it runs, the GPU the
 * plan assumes) are refused, naming them, the field and their values, rather than the first one's values
 * silently winning. Resources stay out of the key (resources.ts: they change what the step writes by float
 * rounding at most), so that a count changed between runs still finds the cached training. `time` and `memory`
 * are limits: the largest wins (`stepResources`).
 */
export const sharedStepConflicts = (declaration: Declaration, plan: Plan): ReadonlyArray<string> =>
  plan.steps.filter((step) => step.experiments.length > 1).flatMap((step) => {
    const all = step.experiments.map((experiment) => ({ experiment, resources: resourcesOf(declaration, experiment, step) }))
    return compared.flatMap((field) => {
      const declared = all.flatMap(({ experiment, resources }) => {
        const value = asked(field, resources, step)
        return value === undefined ? [] : [{ experiment, value }]
      })
      if (new Set(declared.map((d) => d.value)).size < 2) return []
      const what = step.kind === "train" || step.kind === "train-clip" ? "training" : `${step.kind} step`
      return [
        `${step.id}: one ${what} shared by ${all.map((a) => a.experiment).join(" and ")}, which declare different resources.${step.kind}.${field} ` +
        `(${declared.map((d) => `${d.experiment} ${d.value}`).join(", ")}); declare the same ${field === "processes" ? "count" : "value"} for all of them`
      ]
    })
  })
