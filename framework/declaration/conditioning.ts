import { Schema } from "effect"
import { type Dataset, sceneClasses } from "./dataset.ts"
import { Bool, IntegerAtLeast, NonEmptyString, NonNegativeNumber, OneOf, shown } from "./rules.ts"
import { Treatment, type TreatmentInput } from "./treatment.ts"

/**
 * Image conditioning of an experiment: a ControlNet (diffusers' ControlNetModel) that reads a
 * conditioning image paired with each SAR image — a label map, an optical image, or another SAR
 * sensor's image — from a metadata column of the dataset, trained with its own treatment next to
 * the other components'.
 *
 * Label maps are one-hot encoded, one channel per declared class: classes are categories, so a
 * palette (RGB colours per class) would put a distance between them that means nothing, and the
 * embedding's first convolution over a one-hot input is itself a learned palette — one vector per
 * class — at the cost of a few weights in that convolution only. The classes are recorded with the
 * prepared data and the trained ControlNet.
 */

export const ConditioningInput = OneOf("label-map", "optical", "sar")
export type ConditioningInput = typeof ConditioningInput.Type

/** Pixel value → class name, e.g. `{ 1: "water", 2: "urban" }` (values need not be contiguous: ESA WorldCover uses 10, 20, …). */
export const ClassMap = Schema.Record({ key: Schema.String, value: NonEmptyString }).pipe(
  Schema.filter((classes) => {
    const values = Object.keys(classes)
    const notValue = values.find((v) => !/^(0|[1-9][0-9]{0,4})$/.test(v) || Number(v) > 65535)
    if (notValue !== undefined) return `keys must be pixel values, integers from 0 to 65535 (got ${shown(notValue)})`
    if (values.length < 2) return `must name at least two classes (got ${values.length})`
    const names = Object.values(classes)
    const twice = names.find((name, i) => names.indexOf(name) !== i)
    return twice === undefined || `names ${shown(twice)} for more than one value`
  })
)
export type ClassMap = typeof ClassMap.Type

/** "unet": diffusers' ControlNetModel.from_unet of the base's UNet; otherwise a diffusers ControlNet folder. */
export const ControlNetInit = Schema.Union(Schema.Literal("unet"), NonEmptyString)

export const ControlNetConditioning = Schema.TaggedStruct("controlnet", {
  input: ConditioningInput,
  /** The metadata column naming each image's conditioning file (`conditioning_file_name`, `optical_file_name`, …). */
  from: NonEmptyString,
  /** Label maps: which pixel value is which class; a synthetic dataset's classes are its generator's (the default). */
  classes: Schema.optionalWith(ClassMap, { exact: true }),
  treatment: Treatment,
  init: Schema.optionalWith(ControlNetInit, { exact: true, default: () => "unet" as const }),
  /**
   * Widths of the conditioning embedding's stages (diffusers' conditioning_embedding_out_channels) for
   * init "unet"; the image is 2^(stages − 1) × the latents, so there is one stage more than the VAE halves.
   * Absent: diffusers' (16, 32, 96, 256) cut to the base's VAE.
   */
  embedding: Schema.optionalWith(Schema.Array(IntegerAtLeast(1)).pipe(Schema.filter((w) => w.length > 0 || "must list at least one width")), {
    exact: true
  }),
  /** diffusers' controlnet_conditioning_scale: every residual is multiplied by it when sampling. */
  scale: Schema.optionalWith(NonNegativeNumber, { exact: true, default: () => 1 }),
  /** diffusers' guess_mode: residuals only on the conditional half of classifier-free guidance, scaled 0.1 → 1. */
  guessMode: Schema.optionalWith(Bool, { exact: true, default: () => false })
})
export type ControlNetConditioning = typeof ControlNetConditioning.Type

export const Conditioning = ControlNetConditioning
export type Conditioning = typeof Conditioning.Type
export type ConditioningInputDeclaration = typeof Conditioning.Encoded

export const controlNet = (options: {
  readonly input: ConditioningInput
  readonly from: string
  readonly classes?: Readonly<Record<string | number, string>>
  readonly treatment: TreatmentInput
  readonly init?: "unet" | (string & {})
  readonly embedding?: ReadonlyArray<number>
  readonly scale?: number
  readonly guessMode?: boolean
}): ConditioningInputDeclaration => ({ _tag: "controlnet", ...options } as ConditioningInputDeclaration)

/** The metadata columns the synthetic generator writes, and what each holds. */
export const syntheticColumns: Readonly<Record<string, Exclude<ConditioningInput, "sar">>> = {
  conditioning_file_name: "label-map",
  optical_file_name: "optical"
}

/** The synthetic generator's label values: its classes in order, from 1 (0 never occurs: fill classes cover every scene). */
export const syntheticClasses: ClassMap = Object.fromEntries(sceneClasses.map((name, i) => [String(i + 1), name]))

/** The classes of a label-map conditioning on `dataset`: declared, or the synthetic generator's. */
export const classesOf = (conditioning: Conditioning, dataset: Dataset): ClassMap | undefined =>
  conditioning.input !== "label-map" ? undefined : conditioning.classes ?? (dataset._tag === "synthetic" ? syntheticClasses : undefined)

/** Class values in channel order (ascending pixel value). */
export const classValues = (classes: ClassMap): Array<number> => Object.keys(classes).map(Number).sort((a, b) => a - b)
