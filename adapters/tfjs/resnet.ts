import * as tf from "@tensorflow/tfjs-core"
import { silu } from "./activations.ts"
import { convSpecs, linearSpecs, normSpecs, type Layers, type ParameterSpec } from "./layers.ts"
import { groupNorm } from "./normalization.ts"

/** A diffusers ResnetBlock2D as configured by the UNet and VAE blocks ("default" time-embedding norm, SiLU). */
export interface ResnetBlock {
  readonly inChannels: number
  readonly outChannels: number
  /** Width of the time embedding, or undefined when the block takes none (VAE). */
  readonly tembChannels: number | undefined
  readonly groups: number
  /** GroupNorm groups of norm2 (diffusers' `groups_out`, the same as `groups` unless set). */
  readonly groupsOut: number
  readonly eps: number
  readonly outputScaleFactor: number
}

export const resnetSpecs = (module: string, block: ResnetBlock): Array<ParameterSpec> => [
  ...normSpecs(`${module}.norm1`, block.inChannels),
  ...convSpecs(`${module}.conv1`, block.inChannels, block.outChannels, 3),
  ...(block.tembChannels === undefined ? [] : linearSpecs(`${module}.time_emb_proj`, block.tembChannels, block.outChannels)),
  ...normSpecs(`${module}.norm2`, block.outChannels),
  ...convSpecs(`${module}.conv2`, block.outChannels, block.outChannels, 3),
  ...(block.inChannels === block.outChannels ? [] : convSpecs(`${module}.conv_shortcut`, block.inChannels, block.outChannels, 1))
]

/** norm1 → SiLU → conv1 (+ time embedding) → norm2 → SiLU → conv2, plus the (1×1-projected) input. */
export const resnetBlock = (layers: Layers, module: string, block: ResnetBlock, x: tf.Tensor4D, temb: tf.Tensor2D | undefined): tf.Tensor4D => {
  let h = layers.conv2d(`${module}.conv1`, silu(groupNorm(layers, `${module}.norm1`, x, block.groups, block.eps)), { padding: 1 })
  if (block.tembChannels !== undefined && temb !== undefined) {
    const t = layers.linear(`${module}.time_emb_proj`, silu(temb))
    h = tf.add(h, tf.reshape(t, [t.shape[0], 1, 1, block.outChannels])) as tf.Tensor4D
  }
  h = layers.conv2d(`${module}.conv2`, silu(groupNorm(layers, `${module}.norm2`, h, block.groupsOut, block.eps)), { padding: 1 })
  const shortcut = block.inChannels === block.outChannels ? x : layers.conv2d(`${module}.conv_shortcut`, x, { padding: 0 })
  const out: tf.Tensor4D = tf.add(shortcut, h)
  return block.outputScaleFactor === 1 ? out : tf.div(out, block.outputScaleFactor)
}
