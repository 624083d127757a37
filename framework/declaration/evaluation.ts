import { Schema } from "effect"
import { Dataset } from "./dataset.ts"
import { IntegerAtLeast, NonEmptyString, NonNegativeNumber, OneOf, Seed, numberWhere } from "./rules.ts"

/** Distances between amplitude distributions (DESIGN §6), as `sardine compare` computes them. */
export const AmplitudeMetrics = Schema.Struct({
  /** Normalised amplitude v = clip(A / (mean + 3·std), 0, 1), or 20·log10(v) floored at `floorDb`. */
  domain: Schema.optionalWith(OneOf("amplitude", "db"), { exact: true, default: () => "amplitude" as const }),
  floorDb: Schema.optionalWith(numberWhere("a number of dB < 0", (n) => Number.isFinite(n) && n < 0), {
    exact: true,
    default: () => -60
  }),
  /** Histogram bins of KL / JS / Hellinger / Bhattacharyya; Wasserstein-1 and KS use exact samples. */
  bins: Schema.optionalWith(IntegerAtLeast(2), { exact: true, default: () => 256 }),
  /** Added to every bin count of both histograms before KL (Laplace smoothing), so empty bins stay finite. */
  klPseudoCount: Schema.optionalWith(NonNegativeNumber, { exact: true, default: () => 1 })
})

/** A list that must hold at least one element (plain arrays in the declaration's TS type). */
const AtLeastOne = <S extends Schema.Schema.Any>(item: S) =>
  Schema.Array(item).pipe(Schema.filter((items) => items.length > 0 || "must list at least one value"))

/** GLCM descriptors as scikit-image computes them (DESIGN §7). */
export const TextureMetrics = Schema.Struct({
  levels: Schema.optionalWith(IntegerAtLeast(2), { exact: true, default: () => 32 }),
  distances: Schema.optionalWith(AtLeastOne(IntegerAtLeast(1)), { exact: true, default: () => [1] }),
  /** Degrees. */
  angles: Schema.optionalWith(
    AtLeastOne(numberWhere("an angle in [0, 360) degrees", (n) => n >= 0 && n < 360)),
    { exact: true, default: () => [0, 45, 90, 135] }
  )
})

/**
 * A second CLIP that judges prompt following alone (the alignment gap and retrieval), e.g. one trained
 * on SAR and optical renderings of the same scenes, so that it reads a scene's layout in either modality
 * (when the prompt's wording names the image's modality: docs/demo-base.md, "The prompt-following
 * judge"); the absolute alignment stays `alignment.clip`'s.
 */
export const PromptFollowingJudge = Schema.Struct({
  /** A CLIP folder, as `alignment.clip`; relative to the declaration file. */
  clip: NonEmptyString
})

/** Prompt alignment by a (SAR-specialised) CLIP; see docs/sar-clip.md. */
export const AlignmentMetrics = Schema.Struct({
  /** Folder with image.onnx, text.onnx, vocab.json, merges.txt, or a transformers CLIPModel folder; relative to the declaration file. */
  clip: NonEmptyString,
  /** Absent: `clip` judges prompt following too. */
  promptFollowing: Schema.optionalWith(PromptFollowingJudge, { exact: true }),
  /** Also FID_CLIP / KID_CLIP / CMMD over the CLIP image embeddings (FID and KID's formulas on CLIP features, never Inception's). */
  embeddingDistances: Schema.optionalWith(Schema.Boolean, { exact: true, default: () => true }),
  /** k of the top-k retrieval of each image's own prompt among the evaluation's prompts (prompt following); clipped to their number. */
  retrievalK: Schema.optionalWith(IntegerAtLeast(1), { exact: true, default: () => 3 })
})

/**
 * Confidence intervals of every metric, and the comparisons between strategies: a bootstrap over
 * the noise draws of the generated images (sampling seed × sample index; every prompt kept in
 * every resample) and permutation tests, drawn from `seed`; over training seeds when a strategy
 * has replicates. Every experiment of a study declares the same (its comparisons use it).
 */
export const Uncertainty = Schema.Struct({
  /** Confidence level of the intervals; comparisons test at 1 − level after Holm's correction. */
  level: Schema.optionalWith(numberWhere("a number in (0.5, 1)", (n) => n > 0.5 && n < 1), { exact: true, default: () => 0.95 }),
  /** Bootstrap resamples per interval, and the most permutations a test draws (fewer are enumerated exactly). */
  resamples: Schema.optionalWith(IntegerAtLeast(100), { exact: true, default: () => 2000 }),
  seed: Schema.optionalWith(Seed, { exact: true, default: () => 0 })
})
export type Uncertainty = typeof Uncertainty.Type

export const defaultUncertainty: Uncertainty = { level: 0.95, resamples: 2000, seed: 0 }

export const Evaluation = Schema.Struct({
  /** The real images generated samples are compared with. */
  reference: Dataset,
  amplitude: Schema.optionalWith(AmplitudeMetrics, {
    exact: true,
    default: () => ({ domain: "amplitude" as const, floorDb: -60, bins: 256, klPseudoCount: 1 })
  }),
  texture: Schema.optionalWith(TextureMetrics, { exact: true, default: () => ({ levels: 32, distances: [1], angles: [0, 45, 90, 135] }) }),
  alignment: Schema.optionalWith(AlignmentMetrics, { exact: true }),
  uncertainty: Schema.optionalWith(Uncertainty, { exact: true, default: () => defaultUncertainty })
})
export type Evaluation = typeof Evaluation.Type
export type EvaluationInput = typeof Evaluation.Encoded
