import { Schema } from "effect"
import { BaseModel } from "./base-model.ts"
import { ClipModel } from "./clip-model.ts"
import { Components } from "./components.ts"
import { Conditioning } from "./conditioning.ts"
import { Dataset } from "./dataset.ts"
import { Evaluation } from "./evaluation.ts"
import { Generation } from "./generation.ts"
import { Resources } from "./resources.ts"
import { Bool, IntegerAtLeast, Name, OneOf } from "./rules.ts"
import { Training } from "./training.ts"

/**
 * Which engine computes the steps: the embedded tfjs engine, the torch engine (a Python worker on PyTorch,
 * diffusers, PEFT), or `auto` (torch when its Python environment is configured, else tfjs). `--engine`
 * overrides it; absent, tfjs.
 */
export const EngineChoice = OneOf("tfjs", "torch", "auto")
export type EngineChoice = typeof EngineChoice.Type

/** One fine-tuning strategy: what trains, on what data, and how its samples are judged. */
export const Experiment = Schema.Struct({
  kind: Schema.Literal("experiment"),
  name: Name,
  description: Schema.optionalWith(Schema.String, { exact: true }),
  /** A lone experiment's engine; in a study it may only repeat the study's (a file that also runs alone). */
  engine: Schema.optionalWith(EngineChoice, { exact: true }),
  /** A baseline trains nothing: its samples come from the base model as it is. */
  baseline: Schema.optionalWith(Bool, { exact: true, default: () => false }),
  base: BaseModel,
  components: Components,
  /** Image conditioning (a ControlNet on label maps, optical or another sensor's SAR), trained next to the components. */
  conditioning: Schema.optionalWith(Conditioning, { exact: true }),
  /** The SAR training set (also fixes the training resolution). */
  data: Dataset,
  /** Required unless `baseline`. */
  train: Schema.optionalWith(Training, { exact: true }),
  generate: Generation,
  evaluate: Evaluation,
  /**
   * Trainings with different seeds (see replicates.ts for how they are derived), each generating
   * and evaluated on its own; the report gives the mean over them with its interval. Absent: the
   * study's `replicates`. A baseline trains nothing and has one.
   */
  replicates: Schema.optionalWith(IntegerAtLeast(1), { exact: true }),
  /** What this experiment's steps ask of the machines, over the study's `resources` (e.g. more GPUs and time for a full fine-tune). */
  resources: Schema.optionalWith(Resources, { exact: true })
})
export type Experiment = typeof Experiment.Type
export type ExperimentInput = Omit<typeof Experiment.Encoded, "kind">

/** Strategies compared against each other; identical steps are shared, not repeated. */
export const Study = Schema.Struct({
  kind: Schema.Literal("study"),
  name: Name,
  description: Schema.optionalWith(Schema.String, { exact: true }),
  experiments: Schema.Array(Experiment).pipe(
    Schema.filter((experiments) => experiments.length > 0 || "must list at least one experiment")
  ),
  engine: Schema.optionalWith(EngineChoice, { exact: true }),
  /** Training replicates of every experiment that trains and does not declare its own. */
  replicates: Schema.optionalWith(IntegerAtLeast(1), { exact: true, default: () => 1 }),
  /**
   * Pairs the report compares, each `[a, b]` read as "a against b", besides every strategy
   * against the baseline: `compare: [["hybrid", "hybrid-no-token"]]`.
   */
  compare: Schema.optionalWith(Schema.Array(Schema.Tuple(Name, Name)), { exact: true, default: () => [] }),
  /** Steps the local runner executes at once. */
  concurrency: Schema.optionalWith(IntegerAtLeast(1), { exact: true, default: () => 1 }),
  /** What each step kind asks of a cluster when steps run as SLURM jobs (`sardine run --executor slurm`). */
  resources: Schema.optionalWith(Resources, { exact: true })
})
export type Study = typeof Study.Type
export type StudyInput = Omit<typeof Study.Encoded, "kind" | "experiments"> & {
  readonly experiments: ReadonlyArray<typeof Experiment.Encoded>
}

export const Declaration = Schema.Union(Experiment, Study, ClipModel)
export type Declaration = typeof Declaration.Type
export type DeclarationInput = typeof Declaration.Encoded

export const experiment = (input: ExperimentInput): typeof Experiment.Encoded => ({ kind: "experiment", ...input })

export const study = (input: StudyInput): typeof Study.Encoded => ({ kind: "study", ...input })

/** The experiments of a declaration, a single experiment being a study of one (a CLIP model has none). */
export const experimentsOf = (declaration: Declaration): ReadonlyArray<Experiment> =>
  declaration.kind === "study" ? declaration.experiments : declaration.kind === "experiment" ? [declaration] : []
