import { Schema } from "effect"
import { Fraction, IntegerAtLeast, NonEmptyString, NonNegativeNumber, PositiveNumber, shown } from "./rules.ts"

/** The component is loaded as is and never receives gradients. */
export const Frozen = Schema.TaggedStruct("frozen", {})

/** Every parameter of the component trains. */
export const Full = Schema.TaggedStruct("full", {
  lr: PositiveNumber,
  weightDecay: Schema.optionalWith(NonNegativeNumber, { exact: true, default: () => 0 })
})

/**
 * Low-rank adapters on the named projections; base weights stay untouched.
 * `alpha` defaults to `rank` (scale 1); `targets` default per component (see `defaultLoraTargets`).
 */
export const Lora = Schema.TaggedStruct("lora", {
  rank: IntegerAtLeast(1),
  alpha: Schema.optionalWith(PositiveNumber, { exact: true }),
  dropout: Schema.optionalWith(Fraction, { exact: true, default: () => 0 }),
  targets: Schema.optionalWith(Schema.Array(NonEmptyString), { exact: true }),
  lr: PositiveNumber
})

export const Treatment = Schema.Union(Frozen, Full, Lora).annotations({
  message: (issue) => ({
    message: `must be frozen(), full({ lr }) or lora({ rank, lr }) (got ${shown(issue.actual)})`,
    override: false
  })
})
export type Treatment = typeof Treatment.Type
export type TreatmentInput = typeof Treatment.Encoded

export type ComponentKind = "unet" | "vae" | "textEncoder"

/** Defaults as the reference trainers use them (diffusers / PEFT examples). */
export const defaultLoraTargets: Record<ComponentKind, ReadonlyArray<string>> = {
  unet: ["to_q", "to_k", "to_v", "to_out.0"],
  textEncoder: ["q_proj", "k_proj", "v_proj", "out_proj"],
  // The VAE has attention only in its mid-blocks; its resnet convolutions carry the capacity.
  vae: ["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2"]
}

export const frozen = (): TreatmentInput => ({ _tag: "frozen" })

export const full = (options: { readonly lr: number; readonly weightDecay?: number }): TreatmentInput => ({
  _tag: "full",
  ...options
})

export const lora = (options: {
  readonly rank: number
  readonly alpha?: number
  readonly dropout?: number
  readonly targets?: ReadonlyArray<string>
  readonly lr: number
}): TreatmentInput => ({ _tag: "lora", ...options })

export const trains = (treatment: Treatment): boolean => treatment._tag !== "frozen"

/** Short human label: `frozen`, `full`, `LoRA r=4`. */
export const describeTreatment = (treatment: Treatment): string => {
  switch (treatment._tag) {
    case "frozen":
      return "frozen"
    case "full":
      return "full"
    case "lora":
      return `LoRA r=${treatment.rank}`
  }
}
