import * as tf from "@tensorflow/tfjs-core"
import { silu } from "./activations.ts"
import { linearSpecs, type Layers, type ParameterSpec } from "./layers.ts"

const f32 = Math.fround
const MAX_PERIOD = 10000

/**
 * diffusers' `get_timestep_embedding` for a list of (possibly fractional) values: [n, dim] sin/cos of
 * value · exp(-ln(10000)·i / (dim/2 - shift)), cos first when `flipSinToCos`. Computed step by step in
 * float32 like torch, because at t ≈ 1000 the rounding of the angle moves the result by ~1e-4.
 * The values are data (timesteps, SDXL size/crop ids), never trained, so this runs on plain arrays.
 */
export const sinusoidalEmbedding = (values: ReadonlyArray<number>, dim: number, flipSinToCos: boolean, freqShift: number): Float32Array => {
  const half = Math.floor(dim / 2)
  const frequencies = new Float32Array(half)
  const logPeriod = f32(-Math.log(MAX_PERIOD))
  for (let i = 0; i < half; i++) frequencies[i] = f32(Math.exp(f32(f32(logPeriod * i) / (half - freqShift))))
  const out = new Float32Array(values.length * dim)
  values.forEach((value, row) => {
    const t = f32(value)
    for (let i = 0; i < half; i++) {
      const angle = f32(t * frequencies[i]!)
      const sin = Math.sin(angle)
      const cos = Math.cos(angle)
      out[row * dim + i] = flipSinToCos ? cos : sin
      out[row * dim + half + i] = flipSinToCos ? sin : cos
    }
  })
  return out
}

/** diffusers' TimestepEmbedding (linear_1 → SiLU → linear_2). */
export const timestepEmbeddingSpecs = (module: string, inChannels: number, timeEmbedDim: number): Array<ParameterSpec> => [
  ...linearSpecs(`${module}.linear_1`, inChannels, timeEmbedDim),
  ...linearSpecs(`${module}.linear_2`, timeEmbedDim, timeEmbedDim)
]

export const timestepEmbedding = (layers: Layers, module: string, x: tf.Tensor2D): tf.Tensor2D =>
  layers.linear(`${module}.linear_2`, silu(layers.linear(`${module}.linear_1`, x))) as tf.Tensor2D
