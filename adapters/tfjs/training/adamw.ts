import * as tf from "@tensorflow/tfjs-core"
import { registerArrayKernel } from "../fused-kernels/array-kernel.ts"

/**
 * AdamW (Loshchilov & Hutter 2019) as torch.optim.AdamW computes it, which tfjs lacks: decoupled
 * weight decay p ← p·(1 − lr·λ), then the Adam step with bias corrections. Like torch, a parameter
 * without a gradient in a step is skipped entirely, and each parameter counts its own steps.
 */

export interface AdamWHyperparameters {
  readonly beta1: number
  readonly beta2: number
  readonly epsilon: number
}

export interface MomentState {
  /** Steps this parameter has taken. */
  step: number
  m: tf.Tensor
  v: tf.Tensor
}

/** The optimiser's state by trainable name; it owns its tensors. */
export type AdamWState = Map<string, MomentState>

export interface ParameterUpdate {
  readonly name: string
  readonly variable: tf.Variable
  readonly gradient: tf.Tensor
  readonly lr: number
  readonly weightDecay: number
}

const UPDATE = "SardineAdamWUpdate"
const f32 = Math.fround

/**
 * One parameter's step in a single pass over its values, instead of ~20 tfjs operations (and their
 * scalar uploads) per parameter. Each operation is rounded to float32 exactly where the tfjs
 * formulation it replaces rounded it, so the result is that formulation's bit for bit:
 *   m ← m + (g − m)·(1 − β1);  v ← v·β2 + g²·(1 − β2)
 *   p ← p·(1 − lr·λ) − m / (√v / √(1 − β2ᵗ) + ε) · lr / (1 − β1ᵗ)
 * (on the first step m = g·(1 − β1) and v = g²·(1 − β2); the m and v inputs are then absent).
 */
registerArrayKernel({
  name: UPDATE,
  inputs: ["param", "gradient", "m", "v"],
  outputs: ["param", "m", "v"],
  outputShapes: ([p]) => [p.shape, p.shape, p.shape],
  compute: ([p, g, m, v], [pOut, mOut, vOut], attrs) => {
    const first = attrs.first as boolean
    const oneMinusBeta1 = f32(1 - (attrs.beta1 as number))
    const beta2 = f32(attrs.beta2 as number)
    const oneMinusBeta2 = f32(1 - (attrs.beta2 as number))
    const decay = f32(attrs.decay as number)
    const decays = (attrs.decay as number) !== 1
    const correction2 = f32(attrs.correction2 as number)
    const epsilon = f32(attrs.epsilon as number)
    const stepSize = f32(attrs.stepSize as number)
    for (let i = 0; i < p.length; i++) {
      const gi = g[i]!
      const g2 = f32(gi * gi)
      const mi = first ? f32(gi * oneMinusBeta1) : f32(m[i]! + f32(f32(gi - m[i]!) * oneMinusBeta1))
      const vi = first ? f32(g2 * oneMinusBeta2) : f32(f32(v[i]! * beta2) + f32(g2 * oneMinusBeta2))
      const decayed = decays ? f32(p[i]! * decay) : p[i]!
      const denominator = f32(f32(f32(Math.sqrt(vi)) / correction2) + epsilon)
      pOut[i] = decayed - f32(f32(mi / denominator) * stepSize)
      mOut[i] = mi
      vOut[i] = vi
    }
  }
})

/** Applies one step to each parameter in place, replacing (and releasing) its moments in `state`. */
export const adamwStep = (updates: ReadonlyArray<ParameterUpdate>, state: AdamWState, h: AdamWHyperparameters): void => {
  for (const u of updates) {
    const previous = state.get(u.name)
    const step = (previous?.step ?? 0) + 1
    // The first step has no moments yet: the gradient stands in for them (the kernel ignores them then).
    const inputs = { param: u.variable, gradient: u.gradient, m: previous?.m ?? u.gradient, v: previous?.v ?? u.gradient }
    const [param, m, v] = tf.engine().runKernel(UPDATE, inputs, {
      first: previous === undefined,
      beta1: h.beta1,
      beta2: h.beta2,
      epsilon: h.epsilon,
      decay: u.weightDecay === 0 ? 1 : 1 - u.lr * u.weightDecay,
      correction2: Math.sqrt(1 - h.beta2 ** step),
      stepSize: u.lr / (1 - h.beta1 ** step)
    }) as [tf.Tensor, tf.Tensor, tf.Tensor]
    u.variable.assign(param)
    param.dispose()
    if (previous !== undefined) tf.dispose([previous.m, previous.v])
    state.set(u.name, { step, m, v })
  }
}

export const disposeAdamW = (state: AdamWState): void => {
  for (const s of state.values()) tf.dispose([s.m, s.v])
  state.clear()
}
