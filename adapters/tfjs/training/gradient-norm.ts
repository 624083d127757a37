import type * as tf from "@tensorflow/tfjs-core"

/**
 * ‖g‖₂ over all gradients together (torch's `clip_grad_norm_` total norm), accumulated in float64
 * over the values read once: a square and a sum kernel per gradient cost more than the reading.
 */
export const globalNorm = (gradients: ReadonlyArray<tf.Tensor>): number => {
  let total = 0
  for (const g of gradients) {
    const values = g.dataSync()
    for (let i = 0; i < values.length; i++) total += values[i]! * values[i]!
  }
  return Math.sqrt(total)
}

/** torch's clip factor: max / (norm + 1e-6), at most 1. */
export const clipFactor = (norm: number, maxNorm: number | undefined): number => maxNorm === undefined ? 1 : Math.min(1, maxNorm / (norm + 1e-6))
