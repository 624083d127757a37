import type { Normalisation } from "../declaration/dataset.ts"

/**
 * Generated samples are normalised amplitude in [0, 1]; with the normalisation's constants they map
 * back to linear amplitude or dB. Only normalisations with fixed constants invert: a dB window, and
 * A / (mean + k·std) with given statistics. Per-image statistics and percentiles differ per image.
 * Clipped values come back at the clip limits.
 */

export type DenormalisedUnit = "amplitude" | "db"

/** Why a normalisation cannot be inverted, or undefined when it can. */
export const invertibleNormalisation = (normalisation: Normalisation): string | undefined => {
  switch (normalisation._tag) {
    case "db-window":
      return undefined
    case "mean-std":
      return typeof normalisation.statistics === "object"
        ? undefined
        : `mean-std normalisation with ${normalisation.statistics} statistics has no fixed scale to invert; give --mean-std MEAN,STD[,K]`
    case "percentile":
      return "percentile normalisation is per image and has no fixed scale to invert; give --db-window MIN,MAX or --mean-std MEAN,STD[,K]"
  }
}

/** Normalised values back in `unit` (dB: 20·log10 A). The normalisation must be invertible. */
export const denormalise = (unit: Float32Array, normalisation: Normalisation, to: DenormalisedUnit): Float32Array => {
  const out = new Float32Array(unit.length)
  if (normalisation._tag === "db-window") {
    const { min, max } = normalisation
    for (let i = 0; i < unit.length; i++) {
      const db = min + unit[i]! * (max - min)
      out[i] = to === "db" ? db : 10 ** (db / 20)
    }
    return out
  }
  if (normalisation._tag !== "mean-std" || typeof normalisation.statistics !== "object") {
    throw new Error(invertibleNormalisation(normalisation))
  }
  const scale = normalisation.statistics.mean + normalisation.k * normalisation.statistics.std
  for (let i = 0; i < unit.length; i++) {
    const amplitude = unit[i]! * scale
    out[i] = to === "db" ? 20 * Math.log10(amplitude) : amplitude
  }
  return out
}
