import * as tf from "@tensorflow/tfjs-core"
import { registerArrayKernel } from "../fused-kernels/array-kernel.ts"

/**
 * EMA of the trainable weights as diffusers' EMAModel (no warm-up variant): at optimisation step n
 * the decay is min(declared, (1 + k) / (10 + k)) with k = n − 1, so the first update copies the
 * weights and the average settles in gradually; ema ← ema − (1 − decay)·(ema − weight).
 */
export const emaDecay = (declared: number, optimizationStep: number): number => {
  const k = optimizationStep - 1
  if (k <= 0) return 0
  return Math.min(declared, (1 + k) / (10 + k))
}

/** The averages by trainable name; it owns its tensors. */
export type EmaState = Map<string, tf.Tensor>

/** Starts the averages at the current weights (copies). */
export const startEma = (weights: ReadonlyArray<{ readonly name: string; readonly variable: tf.Tensor }>): EmaState =>
  new Map(weights.map((w) => [w.name, tf.clone(w.variable)]))

const UPDATE = "SardineEmaUpdate"
const f32 = Math.fround

/**
 * ema − (ema − weight)·(1 − decay) in one pass, rounded to float32 where the three tfjs operations it
 * replaces rounded (the same values bit for bit).
 */
registerArrayKernel({
  name: UPDATE,
  inputs: ["average", "weight"],
  outputs: ["average"],
  outputShapes: ([average]) => [average.shape],
  compute: ([average, weight], [out], attrs) => {
    const rate = f32(1 - (attrs.decay as number))
    for (let i = 0; i < out.length; i++) out[i] = average[i]! - f32(f32(average[i]! - weight[i]!) * rate)
  }
})

export const updateEma = (
  state: EmaState,
  weights: ReadonlyArray<{ readonly name: string; readonly variable: tf.Tensor }>,
  decay: number
): void => {
  for (const w of weights) {
    const previous = state.get(w.name)!
    const next = tf.engine().runKernel(UPDATE, { average: previous, weight: w.variable }, { decay }) as tf.Tensor
    previous.dispose()
    state.set(w.name, next)
  }
}

export const disposeEma = (state: EmaState): void => {
  tf.dispose([...state.values()])
  state.clear()
}
