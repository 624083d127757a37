import type { ComponentName, ResolvedTreatment } from "./adaptation.ts"
import { enclosingNames, nearestPattern, patternMatcher, segmentRuns, segmentSuffixes, selectedParameters } from "./module-patterns.ts"

/**
 * What trains, as a filter over a component's parameter tree (Equinox's `partition`): a treatment
 * splits the parameters into trainable and frozen ones (`full`: those `only` selects; `frozen`,
 * `lora`: none) and names the modules that get new leaves (`lora`: the Linear / Conv2d modules its
 * targets match). Engines, the plan-time check and the exporters all ask this one function.
 */

/** A parameter as the architecture names it: torch state-dict name and shape, and whether it is a Linear / Conv2d weight. */
export interface ParameterInfo {
  readonly name: string
  readonly shape: ReadonlyArray<number>
  /** `linear` / `conv`: the weight of a Linear / Conv2d module (what LoRA adapts); `as-is`: anything else. */
  readonly layout: "linear" | "conv" | "as-is"
}

/** A Linear or Conv2d module that can carry an adapter. */
export interface AdaptableModule {
  /** Module name (the weight's name without `.weight`). */
  readonly module: string
  readonly kind: "linear" | "conv"
  readonly inFeatures: number
  readonly outFeatures: number
  /** Kernel height and width (1 × 1 for Linear). */
  readonly kernel: readonly [number, number]
}

export interface Partition {
  readonly trainable: ReadonlyArray<string>
  readonly frozen: ReadonlyArray<string>
  /** Modules that get LoRA adapters, in model order. */
  readonly adapted: ReadonlyArray<AdaptableModule>
}

/** The Linear / Conv2d modules of a model (from its parameters). */
export const adaptableModules = (parameters: ReadonlyArray<ParameterInfo>): Array<AdaptableModule> =>
  parameters.flatMap((p): Array<AdaptableModule> => {
    if (!p.name.endsWith(".weight") || p.layout === "as-is") return []
    const module = p.name.slice(0, -".weight".length)
    const [outFeatures, inFeatures, kernelHeight, kernelWidth] = p.shape
    if (outFeatures === undefined || inFeatures === undefined) return []
    if (p.layout === "linear") return [{ module, kind: "linear", inFeatures, outFeatures, kernel: [1, 1] }]
    return kernelHeight === undefined || kernelWidth === undefined
      ? []
      : [{ module, kind: "conv", inFeatures, outFeatures, kernel: [kernelHeight, kernelWidth] }]
  })

export const partition = (parameters: ReadonlyArray<ParameterInfo>, treatment: ResolvedTreatment): Partition => {
  const names = parameters.map((p) => p.name)
  const selected = treatment._tag === "full" ? selectedParameters(names, treatment.only) : new Set<string>()
  const targets = treatment._tag === "lora" ? treatment.targets.map(patternMatcher) : []
  return {
    trainable: names.filter((n) => selected.has(n)),
    frozen: names.filter((n) => !selected.has(n)),
    adapted: adaptableModules(parameters).filter((m) => targets.some((matches) => matches(m.module)))
  }
}

/** A pattern of `only` or `targets` that selects nothing: a declaration error. */
export interface UnmatchedPattern {
  readonly field: "only" | "targets"
  readonly index: number
  /** `"atn1" matches no parameter of the unet (did you mean "attn1"?)` */
  readonly message: string
}

/** The patterns of a treatment that select nothing in `component`'s parameters, each with the nearest name. */
export const unmatchedPatterns = (
  parameters: ReadonlyArray<ParameterInfo>,
  treatment: ResolvedTreatment,
  component: ComponentName | "controlnet"
): ReadonlyArray<UnmatchedPattern> => {
  if (treatment._tag === "frozen") return []
  const names = parameters.map((p) => p.name)
  if (treatment._tag === "full") {
    return treatment.only.flatMap((pattern, index) => {
      if (selectedParameters(names, [pattern]).size > 0) return []
      const near = nearestPattern(pattern, segmentRuns(names, pattern.split(".").length))
      return [{ field: "only" as const, index, message: `${JSON.stringify(pattern)} matches no parameter of the ${component}${meant(near)}` }]
    })
  }
  const modules = adaptableModules(parameters).map((m) => m.module)
  return treatment.targets.flatMap((pattern, index) => {
    const matches = patternMatcher(pattern)
    if (modules.some(matches)) return []
    // A block name (`attn1`) selects modules that hold adaptable ones, not Linear / Conv2d modules themselves.
    const holding = modules.find((m) => enclosingNames(m).slice(0, -1).some(matches))
    const hint = holding !== undefined
      ? ` (it names modules that hold some, such as ${JSON.stringify(holding.split(".").slice(-2).join("."))}: name those)`
      : meant(nearestPattern(pattern, segmentSuffixes(modules, pattern.split(".").length)))
    return [{ field: "targets" as const, index, message: `${JSON.stringify(pattern)} matches no Linear or Conv2d module of the ${component}${hint}` }]
  })
}

const meant = (near: string | undefined) => (near === undefined ? "" : ` (did you mean ${JSON.stringify(near)}?)`)
