import { Schema } from "effect"
import { ModulePattern } from "./module-patterns.ts"
import { Fraction, IntegerAtLeast, NonNegativeNumber, PositiveNumber, shown } from "./rules.ts"

/** The component is loaded as is and never receives gradients. */
export const Frozen = Schema.TaggedStruct("frozen", {})

const Patterns = (what: string) => Schema.Array(ModulePattern).pipe(Schema.filter((patterns) => patterns.length > 0 || `must list at least one ${what}`))

/**
 * The parameters of the component that `only` selects train (module-patterns.ts: a block such as
 * `attn1` or `down_blocks.0`, a module-name pattern, or a parameter suffix such as `bias`); by default
 * every one of them (`["*"]`).
 */
export const Full = Schema.TaggedStruct("full", {
  lr: PositiveNumber,
  weightDecay: Schema.optionalWith(NonNegativeNumber, { exact: true, default: () => 0 }),
  only: Schema.optionalWith(Patterns("pattern"), { exact: true, default: () => ["*"] })
})

/**
 * Low-rank adapters on the Linear / Conv2d modules `targets` name (module-patterns.ts); base weights
 * stay untouched. `alpha` defaults to `rank` (scale 1); `targets` default per component (adaptation.ts).
 */
export const Lora = Schema.TaggedStruct("lora", {
  rank: IntegerAtLeast(1),
  alpha: Schema.optionalWith(PositiveNumber, { exact: true }),
  dropout: Schema.optionalWith(Fraction, { exact: true, default: () => 0 }),
  targets: Schema.optionalWith(Patterns("target"), { exact: true }),
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

export const frozen = (): TreatmentInput => ({ _tag: "frozen" })

export const full = (options: {
  readonly lr: number
  readonly weightDecay?: number
  readonly only?: ReadonlyArray<string>
}): TreatmentInput => ({ _tag: "full", ...options })

export const lora = (options: {
  readonly rank: number
  readonly alpha?: number
  readonly dropout?: number
  readonly targets?: ReadonlyArray<string>
  readonly lr: number
}): TreatmentInput => ({ _tag: "lora", ...options })

export const trains = (treatment: Treatment): boolean => treatment._tag !== "frozen"

/** Short human label: `frozen`, `full`, `full (attn1, attn2)`, `LoRA r=4`. */
export const describeTreatment = (treatment: Treatment): string => {
  switch (treatment._tag) {
    case "frozen":
      return "frozen"
    case "full":
      return treatment.only.length === 1 && treatment.only[0] === "*" ? "full" : `full (${treatment.only.join(", ")})`
    case "lora":
      return `LoRA r=${treatment.rank}`
  }
}
