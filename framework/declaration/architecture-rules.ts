import { Effect } from "effect"
import { resolve } from "node:path"
import { ModelArchitecture } from "../services/model-architecture.ts"
import { resolveAdaptation, treatmentsOf, type ComponentName } from "./adaptation.ts"
import type { DeclarationIssue } from "./cross-field-rules.ts"
import { experimentsOf, type Experiment } from "./experiment.ts"
import type { LoadedDeclaration } from "./load.ts"
import { unmatchedPatterns, type ParameterInfo } from "./partition.ts"

/**
 * The rules only the base's architecture can decide, checked when a declaration is validated, planned
 * or run (not hours later in the train step): every `full({ only })` pattern and LoRA target selects
 * something in its component, and the base has the components the declared family implies. The
 * architecture is read from the base's configs (no weights); a base that cannot be read yet (not
 * downloaded, made by an earlier step of a study) is listed as unchecked.
 */

/** Where a component's treatment was declared. */
const declaredPath = (experiment: Experiment, component: ComponentName): ReadonlyArray<string> => {
  if (component === "unet" || component === "vae") return ["components", component]
  if ("_tag" in experiment.components.textEncoders) return ["components", "textEncoders"]
  return ["components", "textEncoders", component === "text_encoder" ? "textEncoder" : "textEncoder2"]
}

/** The folder with an experiment's architecture: its pipeline, its scratch base's configs, or those its trained base builds on. */
export const architectureFolder = (experiment: Experiment, earlier: ReadonlyArray<Experiment>, directory: string): string => {
  const base = experiment.base
  switch (base._tag) {
    case "diffusers":
      return resolve(directory, base.path)
    case "scratch":
      return resolve(directory, base.architecture)
    case "trained": {
      // Validation guarantees an earlier experiment of that name; merging keeps its architecture.
      const source = earlier.find((e) => e.name === base.experiment)!
      return architectureFolder(source, earlier, directory)
    }
  }
}

export interface ArchitectureCheck {
  readonly issues: ReadonlyArray<DeclarationIssue>
  /** Each base that could not be read, and why. */
  readonly unchecked: ReadonlyArray<{ readonly folder: string; readonly why: string }>
}

export const architectureIssues = (loaded: LoadedDeclaration): Effect.Effect<ArchitectureCheck, never, ModelArchitecture> =>
  Effect.gen(function*() {
    const architectures = yield* ModelArchitecture
    const experiments = experimentsOf(loaded.declaration)
    const issues: Array<DeclarationIssue> = []
    const unchecked = new Map<string, string>()
    const cache = new Map<string, ReadonlyMap<ComponentName, ReadonlyArray<ParameterInfo>> | undefined>()
    for (const [i, experiment] of experiments.entries()) {
      const prefix = loaded.declaration.kind === "study" ? ["experiments", i] : []
      const folder = architectureFolder(experiment, experiments.slice(0, i), loaded.directory)
      if (!cache.has(folder)) {
        const result = yield* Effect.either(architectures.parameters(folder))
        if (result._tag === "Left") unchecked.set(folder, result.left.message)
        cache.set(folder, result._tag === "Right" ? result.right : undefined)
      }
      const architecture = cache.get(folder)
      if (architecture === undefined) continue
      const adaptation = resolveAdaptation(experiment.components, experiment.base.family)
      const declared = treatmentsOf(adaptation).map(([name]) => name)
      const extra = [...architecture.keys()].filter((name) => !declared.includes(name))
      if (extra.length > 0) {
        issues.push({
          path: [...prefix, "base", "family"],
          message: `"${experiment.base.family}" bases have ${declared.filter((n) => n.startsWith("text_encoder")).join(" and ")}, but ${folder} also has ${
            extra.join(", ")
          } (is it an SDXL base?)`
        })
      }
      for (const [component, treatment] of treatmentsOf(adaptation)) {
        const parameters = architecture.get(component)
        if (parameters === undefined) {
          issues.push({ path: [...prefix, "base", "family"], message: `"${experiment.base.family}" bases have a ${component}, but ${folder} has none` })
          continue
        }
        for (const unmatched of unmatchedPatterns(parameters, treatment, component)) {
          issues.push({ path: [...prefix, ...declaredPath(experiment, component), unmatched.field, unmatched.index], message: unmatched.message })
        }
      }
    }
    return { issues, unchecked: [...unchecked].map(([folder, why]) => ({ folder, why })) }
  })
