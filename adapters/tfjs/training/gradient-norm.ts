import * as tf from "@tensorflow/tfjs-core"

/** ‖g‖₂ over all gradients together (torch's `clip_grad_norm_` total norm). */
export const globalNorm = (gradients: ReadonlyArray<tf.Tensor>): number => {
  if (gradients.length === 0) return 0
  const total = tf.tidy(() => tf.sqrt(tf.addN(gradients.map((g) => tf.sum(tf.square(g))))))
  const value = total.dataSync()[0]
  total.dispose()
  return value
}

/** torch's clip factor: max / (norm + 1e-6), at most 1. */
export const clipFactor = (norm: number, maxNorm: number | undefined): number =>
  maxNorm === undefined ? 1 : Math.min(1, maxNorm / (norm + 1e-6))
