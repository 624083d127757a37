import { Schema } from "effect"
import { Dataset } from "./dataset.ts"
import { ClosedFraction, IntegerAtLeast, Name, NonEmptyString, NonNegativeNumber, PositiveNumber, Seed } from "./rules.ts"

/**
 * A CLIP model (image and text towers) trained contrastively from nothing on image–caption pairs:
 * how sardine makes the small SAR-specialised CLIP its alignment metric can use. The result is a
 * transformers CLIPModel folder (config.json, model.safetensors, tokenizer files).
 */
export const ClipTraining = Schema.Struct({
  steps: IntegerAtLeast(1),
  /** Pairs per step; every other pair of the batch is a negative. */
  batchSize: Schema.optionalWith(IntegerAtLeast(2), { exact: true, default: () => 32 }),
  lr: Schema.optionalWith(PositiveNumber, { exact: true, default: () => 1e-3 }),
  weightDecay: Schema.optionalWith(NonNegativeNumber, { exact: true, default: () => 0.1 }),
  warmupSteps: Schema.optionalWith(IntegerAtLeast(0), { exact: true, default: () => 0 }),
  beta1: Schema.optionalWith(ClosedFraction, { exact: true, default: () => 0.9 }),
  beta2: Schema.optionalWith(ClosedFraction, { exact: true, default: () => 0.98 }),
  seed: Schema.optionalWith(Seed, { exact: true, default: () => 0 }),
  checkpointEvery: Schema.optionalWith(IntegerAtLeast(1), { exact: true, default: () => 100 })
})
export type ClipTraining = typeof ClipTraining.Type

export const ClipModel = Schema.Struct({
  kind: Schema.Literal("clip"),
  name: Name,
  description: Schema.optionalWith(Schema.String, { exact: true }),
  /** Folder with a transformers CLIPConfig `config.json` and the tokenizer's vocab.json + merges.txt; no weights. */
  architecture: NonEmptyString,
  /** Seed of the initial weights. */
  seed: Schema.optionalWith(Seed, { exact: true, default: () => 0 }),
  /**
   * Image–caption pairs (the caption template applies as for diffusion data); a list trains on all
   * of them together, e.g. SAR and optical renderings of the same kind of scenes.
   */
  data: Schema.Union(Dataset, Schema.NonEmptyArray(Dataset)),
  train: ClipTraining
})
export type ClipModel = typeof ClipModel.Type
export type ClipModelInput = Omit<typeof ClipModel.Encoded, "kind">

/** The declaration's datasets as a list (one declared dataset is a list of one). */
export const clipDatasets = ({ data }: ClipModel): ReadonlyArray<Dataset> => ("_tag" in data ? [data] : data)

export const clipModel = (input: ClipModelInput): typeof ClipModel.Encoded => ({ kind: "clip", ...input })
