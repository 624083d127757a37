import type { BaseModel, ScratchBase } from "../declaration/base-model.ts"
import type { ClipTraining } from "../declaration/clip-model.ts"
import type { ResolvedAdaptation } from "../declaration/adaptation.ts"
import type { Dataset } from "../declaration/dataset.ts"
import type { Experiment } from "../declaration/experiment.ts"
import type { Evaluation } from "../declaration/evaluation.ts"
import type { Generation } from "../declaration/generation.ts"
import type { Training } from "../declaration/training.ts"
import { type EngineName, engineNames } from "../services/engine.ts"
import type { PreparedConditioning } from "../steps/prepared-dataset.ts"

export const stepKinds = [
  "init-model",
  "merge-model",
  "prepare-data",
  "encode-latents",
  "encode-text",
  "train",
  "train-clip",
  "generate",
  "evaluate",
  "report"
] as const
export type StepKind = (typeof stepKinds)[number]

/**
 * Bumped when a step kind's code changes what it writes, so old cache entries stop matching
 * (the code-version salt of DESIGN §3).
 */
export const codeVersion: Record<StepKind, number> = {
  "init-model": 1,
  // 2: the resolved adaptation; configs keep their number literals; generate.useEma followed.
  "merge-model": 2,
  "prepare-data": 1,
  "encode-latents": 1,
  "encode-text": 1,
  // 2: the trained model's manifest carries the resolved adaptation (version 2).
  train: 2,
  "train-clip": 1,
  generate: 1,
  // 2: intervals, evidence.json, metric-catalog names (issue 20). 3: paired means' intervals, shuffled layout, scene previews (issue 19).
  evaluate: 3,
  // 2: replicates, comparisons, the study's statistics (issue 20). 3: conditioned rows, paired comparisons (issue 19).
  report: 3
}

/**
 * The engine of a step whose numbers depend on it; absent for the tfjs engine, so that adding the torch
 * engine left every tfjs key as it was.
 */
export interface ComputedBy {
  readonly engine?: EngineName
}

/** The declaration fields each step kind reads: exactly what its content key hashes. */
export interface StepConfigs {
  /** A random-weight pipeline from an architecture folder. */
  "init-model": { readonly base: ScratchBase } & ComputedBy
  /** An experiment's base with its trained weights merged in: the base of a later stage. */
  "merge-model": { readonly base: BaseModel; readonly adaptation: ResolvedAdaptation; readonly useEma: boolean } & ComputedBy
  /** With `conditioning`, each sample's conditioning image is prepared too (prepared-dataset.ts). */
  "prepare-data": { readonly dataset: Dataset; readonly token?: string | undefined; readonly conditioning?: Omit<PreparedConditioning, "channels"> }
  "encode-latents": { readonly base: BaseModel } & ComputedBy
  "encode-text": { readonly base: BaseModel } & ComputedBy
  train: { readonly base: BaseModel; readonly adaptation: ResolvedAdaptation; readonly train: Training } & ComputedBy
  /** A CLIP model from nothing, on the prepared image–caption pairs (the tfjs engine: the torch engine has no CLIP trainer). */
  "train-clip": { readonly architecture: string; readonly seed: number; readonly train: ClipTraining }
  generate: { readonly base: BaseModel; readonly adaptation: ResolvedAdaptation; readonly generate: Generation } & ComputedBy
  evaluate: { readonly evaluate: Omit<Evaluation, "reference">; readonly prompts: Generation["prompts"] }
  /**
   * The whole declarations (the report's strategy table reads every component of each), how many
   * training replicates each has (inputs `evaluation:<name>` etc. per replicate, replicates.ts
   * names them), and the declared comparisons.
   */
  report: {
    readonly study: string
    readonly experiments: ReadonlyArray<Experiment>
    readonly replicates: ReadonlyArray<number>
    readonly compare: ReadonlyArray<readonly [string, string]>
  }
}

/** The report's input roles: `evaluation:<replicate name>`, `samples:…`, `training:…`. */
export const reportRole = (kind: "evaluation" | "samples" | "training", replicate: string) => `${kind}:${replicate}`

/** The train step's inputs from `train.validationLoss.data`: its prepared data and caches, named like the training data's. */
export const validationRole = (role: "data" | "latents" | "text") => `validation-${role}`
export const validationDataRole = validationRole("data")

/** A named input: `base`, `data`, `latents`, `text`, `model`, `samples`, `reference`; the report's per replicate (reportRole). */
export interface StepInput {
  readonly role: string
  readonly step: string
}

export type Step = {
  [K in StepKind]: {
    /** Unique in the plan and readable: `<first experiment using it>/<role>`, or `report`. */
    readonly id: string
    readonly kind: K
    /** Content key: the cache folder name. */
    readonly key: string
    readonly config: StepConfigs[K]
    readonly inputs: ReadonlyArray<StepInput>
    /** Experiments whose results depend on this step (several when shared). */
    readonly experiments: ReadonlyArray<string>
  }
}[StepKind]

export type StepOf<K extends StepKind> = Extract<Step, { kind: K }>

/** Steps in dependency order (every input before its users). */
export interface Plan {
  readonly name: string
  readonly steps: ReadonlyArray<Step>
}

/** The engine that computes a step: its config's, tfjs when it names none (and for steps no engine computes). */
export const engineOf = (step: Step): EngineName => ("engine" in step.config && step.config.engine !== undefined ? step.config.engine : "tfjs")

/** The engines a plan's steps run on (those that compute with one), in a stable order. */
export const enginesOf = (plan: Plan): ReadonlyArray<EngineName> => {
  const computing = new Set<StepKind>(["init-model", "merge-model", "encode-latents", "encode-text", "train", "train-clip", "generate"])
  const used = new Set(plan.steps.filter((s) => computing.has(s.kind)).map(engineOf))
  return engineNames.filter((e) => used.has(e))
}
