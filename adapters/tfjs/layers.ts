import * as tf from "@tensorflow/tfjs-core"

/**
 * A model's parameters, keyed by their exact diffusers / transformers state-dict names
 * (`down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight`), in tfjs layout:
 * Linear weights [in, out], Conv2d weights [kh, kw, in, out] (HWIO, for NHWC activations).
 * Entries may be replaced by `tf.Variable`s of the same shape to train them; the forward passes
 * read the map on every call.
 */
export type ParameterMap = Map<string, tf.Tensor>

/**
 * A parameter as torch stores it, and how it is converted on load: Linear and Conv2d weights change
 * layout. The shape is the checkpoint's (torch layout): [out, in] for Linear, [out, in, kh, kw] for Conv2d.
 */
export type ParameterSpec =
  | { readonly name: string; readonly layout: "linear"; readonly shape: readonly [number, number] }
  | { readonly name: string; readonly layout: "conv"; readonly shape: readonly [number, number, number, number] }
  | { readonly name: string; readonly layout: "as-is"; readonly shape: ReadonlyArray<number> }

export interface Conv2dOptions {
  readonly stride?: number
  /** Zero padding: the same on every side, or [top, bottom, left, right]. */
  readonly padding: number | readonly [number, number, number, number]
}

/**
 * The one way models reach their parameters. Every Linear and Conv2d module is applied through
 * `linear` / `conv2d` by its module name (the state-dict name without `.weight` / `.bias`), so a
 * wrapper such as LoRA can change what a named module computes without touching model code.
 */
export interface Layers {
  readonly parameter: (name: string) => tf.Tensor
  readonly has: (name: string) => boolean
  /** y = x·W (+ b) over the last axis of x, for the Linear module `module`. */
  readonly linear: (module: string, x: tf.Tensor) => tf.Tensor
  /** NHWC convolution (+ bias) for the Conv2d module `module`. */
  readonly conv2d: (module: string, x: tf.Tensor4D, options: Conv2dOptions) => tf.Tensor4D
}

const explicitPadding = (padding: Conv2dOptions["padding"]): "valid" | [[number, number], [number, number], [number, number], [number, number]] => {
  const [top, bottom, left, right] = typeof padding === "number" ? [padding, padding, padding, padding] : padding
  if (top === 0 && bottom === 0 && left === 0 && right === 0) return "valid"
  return [[0, 0], [top, bottom], [left, right], [0, 0]]
}

/** The plain layers of a parameter map: each module computes exactly what its torch counterpart does. */
export const layersOf = (parameters: ReadonlyMap<string, tf.Tensor>): Layers => {
  const parameter = (name: string) => {
    const p = parameters.get(name)
    if (p === undefined) throw new Error(`no parameter "${name}"`)
    return p
  }
  const has = (name: string) => parameters.has(name)
  return {
    parameter,
    has,
    linear: (module, x) => {
      const weight = parameter(`${module}.weight`) as tf.Tensor2D
      const bias = has(`${module}.bias`) ? parameter(`${module}.bias`) : undefined
      const inner = x.shape[x.rank - 1]!
      const flat = x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, inner]) as tf.Tensor2D
      const y = tf.fused.matMul({ a: flat, b: weight, ...(bias === undefined ? {} : { bias }) })
      return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), weight.shape[1]])
    },
    conv2d: (module, x, options) => {
      const filter = parameter(`${module}.weight`) as tf.Tensor4D
      const bias = has(`${module}.bias`) ? parameter(`${module}.bias`) : undefined
      const stride = options.stride ?? 1
      return tf.fused.conv2d({ x, filter, strides: [stride, stride], pad: explicitPadding(options.padding), ...(bias === undefined ? {} : { bias }) })
    }
  }
}

/** Spec builders mirroring torch modules, so model files list their parameters the way torch names them. */
export const linearSpecs = (module: string, inFeatures: number, outFeatures: number, bias = true): Array<ParameterSpec> => [
  { name: `${module}.weight`, shape: [outFeatures, inFeatures], layout: "linear" },
  ...(bias ? [{ name: `${module}.bias`, shape: [outFeatures], layout: "as-is" as const }] : [])
]

export const convSpecs = (module: string, inChannels: number, outChannels: number, kernel: number, bias = true): Array<ParameterSpec> => [
  { name: `${module}.weight`, shape: [outChannels, inChannels, kernel, kernel], layout: "conv" },
  ...(bias ? [{ name: `${module}.bias`, shape: [outChannels], layout: "as-is" as const }] : [])
]

/** GroupNorm / LayerNorm affine parameters. */
export const normSpecs = (module: string, channels: number): Array<ParameterSpec> => [
  { name: `${module}.weight`, shape: [channels], layout: "as-is" },
  { name: `${module}.bias`, shape: [channels], layout: "as-is" }
]

export const tensorSpec = (name: string, shape: ReadonlyArray<number>): ParameterSpec => ({ name, shape, layout: "as-is" })
