import { Schema } from "effect"

/** What the pixel values of a SAR image mean (DESIGN §6). */
export const SarUnit = Schema.Literal("amplitude", "intensity", "db")
export type SarUnit = typeof SarUnit.Type

/**
 * Converts values in `unit` to linear amplitude, in place into a new array.
 * dB is taken as 10·log10(intensity), so A = 10^(dB/20); intensity I gives A = sqrt(I).
 */
export const toAmplitude = (values: Float32Array, unit: SarUnit): Float32Array => {
  const out = new Float32Array(values.length)
  switch (unit) {
    case "amplitude":
      out.set(values)
      break
    case "intensity":
      for (let i = 0; i < values.length; i++) out[i] = Math.sqrt(values[i]!)
      break
    case "db":
      for (let i = 0; i < values.length; i++) out[i] = Math.pow(10, values[i]! / 20)
      break
  }
  return out
}

/** Linear amplitude to decibels of intensity: 20·log10(A). */
export const amplitudeToDb = (values: Float32Array): Float32Array => {
  const out = new Float32Array(values.length)
  for (let i = 0; i < values.length; i++) out[i] = 20 * Math.log10(values[i]!)
  return out
}
