import type { BaseModel, ScratchBase } from "../declaration/base-model.ts"
import type { ClipTraining } from "../declaration/clip-model.ts"
import type { ResolvedAdaptation } from "../declaration/adaptation.ts"
import type { Dataset } from "../declaration/dataset.ts"
import type { Experiment } from "../declaration/experiment.ts"
import type { Evaluation } from "../declaration/evaluation.ts"
import type { Generation } from "../declaration/generation.ts"
import type { Training } from "../declaration/training.ts"
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
  // 2: intervals, evidence.json, metric-catalog names (issue 20).
  evaluate: 2,
  // 2: replicates, comparisons, the study's statistics (issue 20).
  report: 2
}

/** The declaration fields each step kind reads: exactly what its content key hashes. */
export interface StepConfigs {
  /** A random-weight pipeline from an architecture folder. */
  "init-model": { readonly base: ScratchBase }
  /** An experiment's base with its trained weights merged in: the base of a later stage. */
  "merge-model": { readonly base: BaseModel; readonly adaptation: ResolvedAdaptation; readonly useEma: boolean }
  /** With `conditioning`, each sample's conditioning image is prepared too (prepared-dataset.ts). */
  "prepare-data": { readonly dataset: Dataset; readonly token?: string; readonly conditioning?: Omit<PreparedConditioning, "channels"> }
  "encode-latents": { readonly base: BaseModel }
  "encode-text": { readonly base: BaseModel }
  train: { readonly base: BaseModel; readonly adaptation: ResolvedAdaptation; readonly train: Training }
  /** A CLIP model from nothing, on the prepared image–caption pairs. */
  "train-clip": { readonly architecture: string; readonly seed: number; readonly train: ClipTraining }
  generate: { readonly base: BaseModel; readonly adaptation: ResolvedAdaptation; readonly generate: Generation }
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
