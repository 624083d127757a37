import { Schema } from "effect"
import { Dataset } from "./dataset.ts"
import { IntegerAtLeast, NonEmptyString, NonNegativeNumber, OneOf, Seed, ClosedFraction } from "./rules.ts"

/**
 * A prompt to sample. `split` says whether its concept appeared in the SAR training captions
 * ("seen") or was withheld ("unseen"); reports compare the two. `{token}` stands for the
 * experiment's learned token.
 */
export const Prompt = Schema.Struct({
  text: NonEmptyString,
  split: Schema.optionalWith(OneOf("seen", "unseen"), { exact: true, default: () => "seen" as const })
})
export type Prompt = typeof Prompt.Type

export const Sampler = OneOf("ddpm", "ddim", "euler")
export type Sampler = typeof Sampler.Type

export const Generation = Schema.Struct({
  /** Plain strings are "seen" prompts. Required unless `conditions` gives the scenes (and their captions). */
  prompts: Schema.optionalWith(
    Schema.Array(Schema.Union(Prompt, NonEmptyString)).pipe(Schema.filter((prompts) => prompts.length > 0 || "must list at least one prompt")),
    { exact: true }
  ),
  /**
   * The conditioning scenes of a conditioned experiment (its `conditioning` reads their conditioning images):
   * each scene is sampled with its own caption, and each sample is compared with the scene's true image.
   */
  conditions: Schema.optionalWith(Dataset, { exact: true }),
  /** Noise seeds; each prompt is sampled `samplesPerPrompt` times per seed. */
  seeds: Schema.optionalWith(Schema.Array(Seed), { exact: true, default: () => [0] }),
  samplesPerPrompt: Schema.optionalWith(IntegerAtLeast(1), { exact: true, default: () => 1 }),
  sampler: Schema.optionalWith(Sampler, { exact: true, default: () => "euler" as const }),
  steps: Schema.optionalWith(IntegerAtLeast(1), { exact: true, default: () => 30 }),
  guidanceScale: Schema.optionalWith(NonNegativeNumber, { exact: true, default: () => 7.5 }),
  /** DDIM η (0 = deterministic DDIM). */
  eta: Schema.optionalWith(ClosedFraction, { exact: true, default: () => 0 }),
  /** Image side in pixels; the training data's resolution when absent. */
  resolution: Schema.optionalWith(IntegerAtLeast(8), { exact: true }),
  /** Sample with the EMA weights when training kept them. */
  useEma: Schema.optionalWith(Schema.Boolean, { exact: true, default: () => true })
})
export type Generation = typeof Generation.Type
export type GenerationInput = typeof Generation.Encoded

/** Every declared prompt as an object (none when the scenes of `conditions` bring their captions). */
export const promptsOf = (generation: Generation): ReadonlyArray<Prompt> =>
  (generation.prompts ?? []).map((p) => (typeof p === "string" ? { text: p, split: "seen" as const } : p))
