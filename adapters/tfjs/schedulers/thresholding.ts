import { Schema } from "effect"
import { onlyFalse } from "../model-config.ts"

/**
 * Dynamic thresholding (Imagen's) clips x̂₀ per sample, for pixel-space models: refused. Its two
 * parameters are read only with it, so any value of theirs is taken.
 */
export const thresholdingFields = {
  thresholding: onlyFalse("dynamic thresholding is for pixel-space models"),
  dynamic_thresholding_ratio: Schema.optionalWith(Schema.Number, { default: () => 0.995 }),
  sample_max_value: Schema.optionalWith(Schema.Number, { default: () => 1 })
}
