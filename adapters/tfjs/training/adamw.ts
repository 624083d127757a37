import * as tf from "@tensorflow/tfjs-core"

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

/** Applies one step to each parameter in place, replacing (and releasing) its moments in `state`. */
export const adamwStep = (updates: ReadonlyArray<ParameterUpdate>, state: AdamWState, h: AdamWHyperparameters): void => {
  for (const u of updates) {
    const previous = state.get(u.name)
    const step = (previous?.step ?? 0) + 1
    const next = tf.tidy(() => {
      const g = u.gradient
      const m = previous === undefined ? tf.mul(g, 1 - h.beta1) : tf.add(previous.m, tf.mul(tf.sub(g, previous.m), 1 - h.beta1))
      const v = previous === undefined ? tf.mul(tf.square(g), 1 - h.beta2) : tf.add(tf.mul(previous.v, h.beta2), tf.mul(tf.square(g), 1 - h.beta2))
      const decayed = u.weightDecay === 0 ? u.variable : tf.mul(u.variable, 1 - u.lr * u.weightDecay)
      const stepSize = u.lr / (1 - h.beta1 ** step)
      const denominator = tf.add(tf.div(tf.sqrt(v), Math.sqrt(1 - h.beta2 ** step)), h.epsilon)
      u.variable.assign(tf.sub(decayed, tf.mul(tf.div(m, denominator), stepSize)))
      return { m, v }
    })
    if (previous !== undefined) tf.dispose([previous.m, previous.v])
    state.set(u.name, { step, m: next.m, v: next.v })
  }
}

export const disposeAdamW = (state: AdamWState): void => {
  for (const s of state.values()) tf.dispose([s.m, s.v])
  state.clear()
}
