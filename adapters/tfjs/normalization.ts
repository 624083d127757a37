import * as tf from "@tensorflow/tfjs-core"
import { groupNormalization } from "./fused-kernels/group-normalization.ts"
import type { Layers } from "./layers.ts"

/** torch.nn.GroupNorm on NHWC activations: channels split into `groups` consecutive runs. */
export const groupNorm = (layers: Layers, module: string, x: tf.Tensor4D, groups: number, eps: number): tf.Tensor4D => {
  const [batch, height, width, channels] = x.shape
  const rows = tf.reshape(x, [batch, height * width, channels]) as tf.Tensor3D
  const y = groupNormalization(rows, layers.parameter(`${module}.weight`), layers.parameter(`${module}.bias`), groups, eps)
  return tf.reshape(y, x.shape)
}

/** torch.nn.LayerNorm over the last axis: a group normalisation of each row alone. */
export const layerNorm = <T extends tf.Tensor>(layers: Layers, module: string, x: T, eps: number): T => {
  const width = x.shape[x.rank - 1]!
  const rows = tf.reshape(x, [-1, 1, width]) as tf.Tensor3D
  return tf.reshape(groupNormalization(rows, layers.parameter(`${module}.weight`), layers.parameter(`${module}.bias`), 1, eps), x.shape) as T
}
