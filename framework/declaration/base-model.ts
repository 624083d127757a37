import { Schema } from "effect"
import { NonEmptyString, OneOf } from "./rules.ts"

/**
 * Which architecture a diffusers folder holds. It fixes what can be declared before the folder is
 * read: SDXL has two text encoders (`textEncoder`, `textEncoder2`), the others one.
 */
export const ModelFamily = OneOf("sd15", "sd2", "sdxl", "tiny")
export type ModelFamily = typeof ModelFamily.Type

/** A diffusers pipeline folder; relative paths are relative to the declaration file. */
export const DiffusersBase = Schema.TaggedStruct("diffusers", {
  path: NonEmptyString,
  family: ModelFamily
})
export type DiffusersBase = typeof DiffusersBase.Type

export const BaseModel = DiffusersBase
export type BaseModel = typeof BaseModel.Type

export const diffusers = (path: string, options: { readonly family: ModelFamily }): typeof BaseModel.Encoded => ({
  _tag: "diffusers",
  path,
  family: options.family
})

export type TextEncoderName = "textEncoder" | "textEncoder2"

export const textEncodersOf = (family: ModelFamily): ReadonlyArray<TextEncoderName> =>
  family === "sdxl" ? ["textEncoder", "textEncoder2"] : ["textEncoder"]

/** Native training resolution of each family, used when a declaration gives none. */
export const defaultResolution: Record<ModelFamily, number> = { sd15: 512, sd2: 768, sdxl: 1024, tiny: 32 }
