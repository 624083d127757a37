import { Schema } from "effect"
import { FolderFingerprint } from "./folder-fingerprint.ts"
import { Name, NonEmptyString, OneOf, Seed } from "./rules.ts"

/**
 * Which architecture a diffusers folder holds. It fixes what can be declared before the folder is
 * read: SDXL has two text encoders (`textEncoder`, `textEncoder2`), the others one.
 */
export const ModelFamily = OneOf("sd15", "sd2", "sdxl", "tiny")
export type ModelFamily = typeof ModelFamily.Type

/** A diffusers pipeline folder; relative paths are relative to the declaration file. */
export const DiffusersBase = Schema.TaggedStruct("diffusers", {
  path: NonEmptyString,
  family: ModelFamily,
  /** How edits to the folder are noticed (folder-fingerprint.ts); "metadata" when absent. */
  fingerprint: Schema.optionalWith(FolderFingerprint, { exact: true })
})
export type DiffusersBase = typeof DiffusersBase.Type

/**
 * A pipeline with random weights, built from an architecture folder: `model_index.json`, each
 * component's `config.json`, the scheduler config and the tokenizer files, but no weights. For
 * pretraining a base from nothing (the demo's tiny base).
 */
export const ScratchBase = Schema.TaggedStruct("scratch", {
  architecture: NonEmptyString,
  family: ModelFamily,
  seed: Schema.optionalWith(Seed, { exact: true, default: () => 0 })
})
export type ScratchBase = typeof ScratchBase.Type

/**
 * The merged result of another experiment of the same study (declared before this one): stages
 * such as "train the VAE, then the UNet on its latents" chain this way.
 */
export const TrainedBase = Schema.TaggedStruct("trained", {
  experiment: Name,
  family: ModelFamily
})
export type TrainedBase = typeof TrainedBase.Type

export const BaseModel = Schema.Union(DiffusersBase, ScratchBase, TrainedBase)
export type BaseModel = typeof BaseModel.Type

export const diffusers = (
  path: string,
  options: { readonly family: ModelFamily; readonly fingerprint?: FolderFingerprint }
): typeof BaseModel.Encoded => ({
  _tag: "diffusers",
  path,
  family: options.family,
  ...(options.fingerprint === undefined ? {} : { fingerprint: options.fingerprint })
})

export const scratch = (
  architecture: string,
  options: { readonly family: ModelFamily; readonly seed?: number }
): typeof BaseModel.Encoded => ({ _tag: "scratch", architecture, ...options })

export const trained = (experiment: string, options: { readonly family: ModelFamily }): typeof BaseModel.Encoded => ({
  _tag: "trained",
  experiment,
  family: options.family
})

export type TextEncoderName = "textEncoder" | "textEncoder2"

export const textEncodersOf = (family: ModelFamily): ReadonlyArray<TextEncoderName> => family === "sdxl" ? ["textEncoder", "textEncoder2"] : ["textEncoder"]

/** Native training resolution of each family, used when a declaration gives none. */
export const defaultResolution: Record<ModelFamily, number> = { sd15: 512, sd2: 768, sdxl: 1024, tiny: 32 }
