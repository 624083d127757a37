import { Schema } from "effect"
import { Bool, ClosedFraction, IntegerAtLeast, NonEmptyString, NonNegativeNumber, OneOf, PositiveNumber, Seed, numberWhere } from "./rules.ts"

/** AdamW with decoupled weight decay; the decay itself is declared per component (`full({ weightDecay })`). */
export const AdamW = Schema.TaggedStruct("adamw", {
  beta1: Schema.optionalWith(ClosedFraction, { exact: true, default: () => 0.9 }),
  beta2: Schema.optionalWith(ClosedFraction, { exact: true, default: () => 0.999 }),
  epsilon: Schema.optionalWith(PositiveNumber, { exact: true, default: () => 1e-8 })
})

export const LearningRateSchedule = Schema.Struct({
  warmupSteps: Schema.optionalWith(IntegerAtLeast(0), { exact: true, default: () => 0 }),
  /** After warm-up: hold the declared rates, or follow a half cosine down to 0 at the last step. */
  decay: Schema.optionalWith(OneOf("constant", "cosine"), { exact: true, default: () => "constant" as const })
})

/** Exponential moving average of the trainable weights, used for generation when declared. */
export const Ema = Schema.Struct({
  decay: numberWhere("a number in (0, 1)", (n) => n > 0 && n < 1)
})

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
  optimizer: Schema.optionalWith(AdamW, { exact: true, default: () => ({ _tag: "adamw" as const, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }) }),
  lrSchedule: Schema.optionalWith(LearningRateSchedule, { exact: true, default: () => ({ warmupSteps: 0, decay: "constant" as const }) }),
  ema: Schema.optionalWith(Ema, { exact: true }),
  /** Min-SNR-γ loss weighting (Hang et al. 2023); 5 is the paper's value. Absent = unweighted. */
  minSnrGamma: Schema.optionalWith(PositiveNumber, { exact: true }),
  noiseOffset: Schema.optionalWith(NonNegativeNumber, { exact: true, default: () => 0 }),
  /** Global-norm gradient clipping; absent = no clipping. */
  maxGradNorm: Schema.optionalWith(PositiveNumber, { exact: true }),
  /** Save a resumable checkpoint every this many steps (and at the end). */
  checkpointEvery: Schema.optionalWith(IntegerAtLeast(1), { exact: true, default: () => 100 }),
  /** Prompts sampled at each checkpoint to watch training (logged, not evaluated). */
  validationPrompts: Schema.optionalWith(Schema.Array(NonEmptyString), { exact: true, default: () => [] }),
  vae: Schema.optionalWith(VaeObjective, { exact: true, default: () => ({ loss: "l1" as const, klWeight: 0 }) }),
  /** Probability of replacing a caption by the empty prompt, so classifier-free guidance works. */
  captionDropout: Schema.optionalWith(ClosedFraction, { exact: true, default: () => 0.1 }),
  gradientCheckpointing: Schema.optionalWith(Bool, { exact: true, default: () => false })
})
export type Training = typeof Training.Type
export type TrainingInput = typeof Training.Encoded
