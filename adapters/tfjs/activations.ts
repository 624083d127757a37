import * as tf from "@tensorflow/tfjs-core"

export const silu = <T extends tf.Tensor>(x: T): T => tf.mul(x, tf.sigmoid(x))

/** The exact GELU of torch.nn.functional.gelu: x·Φ(x) = x/2·(1 + erf(x/√2)). */
export const gelu = <T extends tf.Tensor>(x: T): T => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1))

/** OpenAI CLIP's approximation x·σ(1.702x) (transformers' "quick_gelu"). */
export const quickGelu = <T extends tf.Tensor>(x: T): T => tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)))

export type Activation = "silu" | "gelu" | "quick_gelu"

export const activation = (name: Activation) => (name === "silu" ? silu : name === "gelu" ? gelu : quickGelu)
