import * as tf from "@tensorflow/tfjs-core"
import type { Layers } from "./layers.ts"

/** torch.nn.GroupNorm on NHWC activations: channels split into `groups` consecutive runs. */
export const groupNorm = (layers: Layers, module: string, x: tf.Tensor4D, groups: number, eps: number): tf.Tensor4D => {
  const [batch, height, width, channels] = x.shape
  const grouped = tf.reshape(x, [batch, height * width, groups, channels / groups])
  const { mean, variance } = tf.moments(grouped, [1, 3], true)
  const normed = tf.reshape(tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, eps))), x.shape)
  return tf.add(tf.mul(normed, layers.parameter(`${module}.weight`)), layers.parameter(`${module}.bias`))
}

/** torch.nn.LayerNorm over the last axis. */
export const layerNorm = <T extends tf.Tensor>(layers: Layers, module: string, x: T, eps: number): T => {
  const { mean, variance } = tf.moments(x, -1, true)
  const normed = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)))
  return tf.add(tf.mul(normed, layers.parameter(`${module}.weight`)), layers.parameter(`${module}.bias`)) as T
}
