import * as tf from "@tensorflow/tfjs-core"
import { convSpecs, type Layers, type ParameterSpec } from "./layers.ts"

/** diffusers' Downsample2D with a convolution (`<module>.conv`): 3×3, stride 2. */
export const downsampleSpecs = (module: string, channels: number): Array<ParameterSpec> => convSpecs(`${module}.conv`, channels, channels, 3)

/**
 * Stride-2 3×3 convolution. With padding 0 diffusers first pads one row and column at the bottom and
 * right (the VAE's downsamplers); otherwise it pads `padding` on every side.
 */
export const downsample = (layers: Layers, module: string, x: tf.Tensor4D, padding: number): tf.Tensor4D =>
  layers.conv2d(`${module}.conv`, x, { stride: 2, padding: padding === 0 ? [0, 1, 0, 1] : padding })

export const upsampleSpecs = (module: string, channels: number): Array<ParameterSpec> => convSpecs(`${module}.conv`, channels, channels, 3)

/**
 * diffusers' Upsample2D: nearest-neighbour to twice the size (or to `size`, when the UNet follows a
 * skip connection whose size is not a multiple of 2), then a 3×3 convolution.
 */
export const upsample = (layers: Layers, module: string, x: tf.Tensor4D, size?: readonly [number, number]): tf.Tensor4D => {
  const [, height, width] = x.shape
  const target: [number, number] = size === undefined ? [height * 2, width * 2] : [size[0], size[1]]
  return layers.conv2d(`${module}.conv`, tf.image.resizeNearestNeighbor(x, target, false, false), { padding: 1 })
}
