import { Schema } from "effect"
import { Dataset } from "./dataset.ts"
import { Bool, ClosedFraction, IntegerAtLeast, NonEmptyString, NonNegativeNumber, OneOf, PositiveNumber, Seed, numberWhere } from "./rules.ts"

const adamFields = {
  beta1: Schema.optionalWith(ClosedFraction, { exact: true, default: () => 0.9 }),
  beta2: Schema.optionalWith(ClosedFraction, { exact: true, default: () => 0.999 }),
  epsilon: Schema.optionalWith(PositiveNumber, { exact: true, default: () => 1e-8 })
}

/** AdamW with decoupled weight decay; the decay itself is declared per component (`full({ weightDecay })`). */
export const AdamW = Schema.TaggedStruct("adamw", adamFields)

/** AdamW with 8-bit optimiser states (bitsandbytes' AdamW8bit): the torch engine, when bitsandbytes is installed. */
export const AdamW8bit = Schema.TaggedStruct("adamw8bit", adamFields)

export const Optimizer = Schema.Union(AdamW, AdamW8bit)

/**
 * The arithmetic of training: fp32 throughout, or mixed precision — bf16 or fp16 autocast over fp32 master
 * weights (fp16 with loss scaling, on CUDA). The tfjs engine computes in fp32 only.
 */
export const Precision = OneOf("fp32", "bf16", "fp16")
export type Precision = typeof Precision.Type

export const LearningRateSchedule = Schema.Struct({
  warmupSteps: Schema.optionalWith(IntegerAtLeast(0), { exact: true, default: () => 0 }),
  /** After warm-up: hold the declared rates, or follow a half cosine down to 0 at the last step. */
  decay: Schema.optionalWith(OneOf("constant", "cosine"), { exact: true, default: () => "constant" as const })
})

/** Exponential moving average of the trainable weights, used for generation when declared. */
export const Ema = Schema.Struct({
  decay: numberWhere("a number in (0, 1)", (n) => n > 0 && n < 1)
})

/**
 * The diffusion loss of held-out data, measured during training: a seeded share of the prepared samples
 * (`fraction`, never trained on) or a dataset of its own (`data`, prepared and cached like the training
 * data), at `timesteps` evenly spaced timesteps with noise drawn once from the training seed, so the points
 * are comparable across steps and across strategies of one seed.
 */
export const ValidationLoss = Schema.Struct({
  /** The share of the prepared samples held out (rounded to the nearest count; at least one, and one left to train on). */
  fraction: Schema.optionalWith(numberWhere("a number in (0, 0.5]", (n) => n > 0 && n <= 0.5), { exact: true }),
  /** A held-out dataset (any form `data` takes), of the training data's modality and resolution; every sample of the training data trains. */
  data: Schema.optionalWith(Dataset, { exact: true }),
  /** Measure every this many steps (and at the end); `checkpointEvery` when absent. */
  every: Schema.optionalWith(IntegerAtLeast(1), { exact: true }),
  /** How many timesteps each held-out image is noised at, evenly spaced over the schedule. */
  timesteps: Schema.optionalWith(IntegerAtLeast(1), { exact: true, default: () => 4 })
}).pipe(
  Schema.filter((v) =>
    v.fraction !== undefined && v.data !== undefined
      ? { path: ["data"], message: "declare fraction (a share of the training data) or data (a held-out dataset), not both" }
      : v.fraction === undefined && v.data === undefined
      ? { path: ["fraction"], message: "is missing: declare fraction (a share of the training data) or data (a held-out dataset)" }
      : true
  )
)
export type ValidationLoss = typeof ValidationLoss.Type

/** Reconstruction objective of a trained VAE. */
export const VaeObjective = Schema.Struct({
  loss: Schema.optionalWith(OneOf("l1", "mse"), { exact: true, default: () => "l1" as const }),
  klWeight: Schema.optionalWith(NonNegativeNumber, { exact: true, default: () => 0 })
})

export const Training = Schema.Struct({
  steps: IntegerAtLeast(1),
  batchSize: Schema.optionalWith(IntegerAtLeast(1), { exact: true, default: () => 1 }),
  gradientAccumulation: Schema.optionalWith(IntegerAtLeast(1), { exact: true, default: () => 1 }),
  seed: Schema.optionalWith(Seed, { exact: true, default: () => 0 }),
  optimizer: Schema.optionalWith(Optimizer, { exact: true, default: () => ({ _tag: "adamw" as const, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }) }),
  lrSchedule: Schema.optionalWith(LearningRateSchedule, { exact: true, default: () => ({ warmupSteps: 0, decay: "constant" as const }) }),
  ema: Schema.optionalWith(Ema, { exact: true }),
  /** Min-SNR-γ loss weighting (Hang et al. 2023); 5 is the paper's value. Absent = unweighted. */
  minSnrGamma: Schema.optionalWith(PositiveNumber, { exact: true }),
  noiseOffset: Schema.optionalWith(NonNegativeNumber, { exact: true, default: () => 0 }),
  /** Global-norm gradient clipping; absent = no clipping. */
  maxGradNorm: Schema.optionalWith(PositiveNumber, { exact: true }),
  /** Save a resumable checkpoint every this many steps (and at the end). */
  checkpointEvery: Schema.optionalWith(IntegerAtLeast(1), { exact: true, default: () => 100 }),
  /** Prompts sampled during training to watch it (images logged to MLflow and kept in the train step's output; not evaluated). */
  validationPrompts: Schema.optionalWith(Schema.Array(NonEmptyString), { exact: true, default: () => [] }),
  /** Sample the validation prompts every this many steps (and at the end); `checkpointEvery` when absent. */
  validationEvery: Schema.optionalWith(IntegerAtLeast(1), { exact: true }),
  /** Held-out diffusion loss during training (logged as `validation_loss`); absent = every sample trains. */
  validationLoss: Schema.optionalWith(ValidationLoss, { exact: true }),
  vae: Schema.optionalWith(VaeObjective, { exact: true, default: () => ({ loss: "l1" as const, klWeight: 0 }) }),
  /** Probability of replacing a caption by the empty prompt, so classifier-free guidance works. */
  captionDropout: Schema.optionalWith(ClosedFraction, { exact: true, default: () => 0.1 }),
  /** Recompute activations in the backward pass instead of keeping them: less memory, about a third more compute. */
  gradientCheckpointing: Schema.optionalWith(Bool, { exact: true, default: () => false }),
  precision: Schema.optionalWith(Precision, { exact: true, default: () => "fp32" as const })
})
export type Training = typeof Training.Type
export type TrainingInput = typeof Training.Encoded
