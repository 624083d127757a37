import { Schema } from "effect"
import { IntegerAtLeast, NonEmptyString, PositiveNumber, Bool, shown } from "./rules.ts"
import { Treatment, type TreatmentInput } from "./treatment.ts"
import { textEncodersOf, type ModelFamily, type TextEncoderName } from "./base-model.ts"

/** One treatment per text encoder; `textEncoder2` exists only on SDXL bases. */
export const PerEncoder = Schema.Struct({
  textEncoder: Treatment,
  textEncoder2: Schema.optionalWith(Treatment, { exact: true })
})

/**
 * A new token (e.g. `<SAR>`) added to every listed tokenizer. Its embedding rows start from the
 * embedding of `init` and are the only rows of the table that train.
 */
export const LearnedToken = Schema.Struct({
  token: NonEmptyString.pipe(
    Schema.filter((s) => /^<[^<>\s]+>$/.test(s), {
      message: (issue) => `must look like <NAME> without spaces (got ${shown(issue.actual)})`
    })
  ),
  init: NonEmptyString,
  vectors: Schema.optionalWith(IntegerAtLeast(1), { exact: true, default: () => 1 }),
  lr: PositiveNumber,
  /** Which encoders learn the token; all encoders of the base when absent. */
  encoders: Schema.optionalWith(Schema.Array(Schema.Literal("textEncoder", "textEncoder2")), { exact: true }),
  /** Pivotal-tuning style: after each step, rescale the new rows to the mean norm of the table. */
  normReprojection: Schema.optionalWith(Bool, { exact: true, default: () => false })
})
export type LearnedToken = typeof LearnedToken.Type

export const Components = Schema.Struct({
  unet: Treatment,
  vae: Schema.optionalWith(Treatment, { exact: true, default: () => ({ _tag: "frozen" as const }) }),
  /** One treatment for every encoder, or one per encoder. */
  textEncoders: Schema.optionalWith(Schema.Union(Treatment, PerEncoder), {
    default: () => ({ _tag: "frozen" as const })
  }),
  token: Schema.optionalWith(LearnedToken, { exact: true })
})
export type Components = typeof Components.Type
export type ComponentsInput = typeof Components.Encoded

/** The treatment of each text encoder of the base, whichever form was declared. */
export const textEncoderTreatments = (
  components: Components,
  family: ModelFamily
): ReadonlyArray<readonly [TextEncoderName, Treatment]> => {
  const declared = components.textEncoders
  return textEncodersOf(family).map((name) => {
    if ("_tag" in declared) return [name, declared] as const
    const own = name === "textEncoder" ? declared.textEncoder : declared.textEncoder2
    // An SDXL declaration that names only the first encoder leaves the second frozen.
    return [name, own ?? { _tag: "frozen" as const }] as const
  })
}

export type LearnedTokenInput = typeof LearnedToken.Encoded

export const learnedToken = (options: {
  readonly token: string
  readonly init: string
  readonly vectors?: number
  readonly lr: number
  readonly encoders?: ReadonlyArray<TextEncoderName>
  readonly normReprojection?: boolean
}): LearnedTokenInput => options

export type { TreatmentInput }
