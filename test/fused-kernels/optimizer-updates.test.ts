import * as tf from "@tensorflow/tfjs-core"
import { afterAll, describe, expect, it } from "vitest"
import { adamwStep, disposeAdamW, type AdamWState } from "../../adapters/tfjs/training/adamw.ts"
import { disposeEma, emaDecay, startEma, updateEma } from "../../adapters/tfjs/training/exponential-moving-average.ts"
import { globalNorm } from "../../adapters/tfjs/training/gradient-norm.ts"
import { randomValues, useBackend, type BackendName } from "../wasm-kernels/backends.ts"

afterAll(() => tf.setBackend("cpu"))

/**
 * The optimiser's per-parameter kernels promise the values of the tfjs-operation formulation they
 * replaced, bit for bit (so runs and checkpoints are unchanged); that formulation is spelled out here.
 */
const H = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 }

const composedAdamW = (p: tf.Tensor, g: tf.Tensor, previous: { m: tf.Tensor; v: tf.Tensor } | undefined, step: number, lr: number, weightDecay: number) =>
  tf.tidy(() => {
    const m = previous === undefined ? tf.mul(g, 1 - H.beta1) : tf.add(previous.m, tf.mul(tf.sub(g, previous.m), 1 - H.beta1))
    const v = previous === undefined ? tf.mul(tf.square(g), 1 - H.beta2) : tf.add(tf.mul(previous.v, H.beta2), tf.mul(tf.square(g), 1 - H.beta2))
    const decayed = weightDecay === 0 ? p : tf.mul(p, 1 - lr * weightDecay)
    const denominator = tf.add(tf.div(tf.sqrt(v), Math.sqrt(1 - H.beta2 ** step)), H.epsilon)
    return { p: tf.sub(decayed, tf.mul(tf.div(m, denominator), lr / (1 - H.beta1 ** step))), m, v }
  })

const bits = (t: tf.Tensor) => Array.from(new Uint32Array((t.dataSync() as Float32Array).slice().buffer))

describe("AdamW and EMA kernels", () => {
  for (const backend of ["cpu", "wasm"] as Array<BackendName>) {
    it(`give the tfjs-operation AdamW and EMA bit for bit over several steps on ${backend}`, async () => {
      await useBackend(backend)
      const settings = [{ lr: 1e-3, weightDecay: 0 }, { lr: 3e-4, weightDecay: 1e-2 }, { lr: 0.1, weightDecay: 0.3 }]
      const variables = settings.map((_, i) => tf.variable(tf.tensor(randomValues(257 + 31 * i, i + 1))))
      const params = variables.map((variable, i) => ({ name: `p${i}`, variable }))
      const reference = variables.map((v) => ({
        p: tf.clone(v),
        m: undefined as tf.Tensor | undefined,
        v: undefined as tf.Tensor | undefined,
        ema: tf.clone(v)
      }))
      const state: AdamWState = new Map()
      const ema = startEma(params)
      for (let step = 1; step <= 4; step++) {
        // Gradients of very different scales, so rounding differences would show.
        const gradients = variables.map((v, i) => tf.mul(tf.tensor(randomValues(v.size, 10 * step + i)), 10 ** (2 * i - 3)))
        adamwStep(params.map((p, i) => ({ ...p, gradient: gradients[i]!, ...settings[i]! })), state, H)
        updateEma(ema, params, emaDecay(0.99, step))
        reference.forEach((r, i) => {
          const next = composedAdamW(r.p, gradients[i]!, r.m === undefined ? undefined : { m: r.m, v: r.v! }, step, settings[i]!.lr, settings[i]!.weightDecay)
          const average = tf.tidy(() => tf.sub(r.ema, tf.mul(tf.sub(r.ema, next.p), 1 - emaDecay(0.99, step))))
          tf.dispose([r.p, r.m, r.v, r.ema].filter((t): t is tf.Tensor => t !== undefined))
          Object.assign(r, { ...next, ema: average })
        })
        tf.dispose(gradients)
        params.forEach((p, i) => {
          expect(bits(p.variable), `parameter ${i} after step ${step}`).toEqual(bits(reference[i]!.p))
          expect(bits(state.get(p.name)!.m), `m of ${i}`).toEqual(bits(reference[i]!.m!))
          expect(bits(state.get(p.name)!.v), `v of ${i}`).toEqual(bits(reference[i]!.v!))
          expect(state.get(p.name)!.step).toBe(step)
          expect(bits(ema.get(p.name)!), `EMA of ${i}`).toEqual(bits(reference[i]!.ema))
        })
      }
      disposeAdamW(state)
      disposeEma(ema)
      tf.dispose([...variables, ...reference.flatMap((r) => [r.p, r.m!, r.v!, r.ema])])
    })
  }

  it("computes the global norm of all gradients in float64", async () => {
    await useBackend("wasm")
    const gradients = [tf.tensor([3, 4]), tf.tensor([[12]]), tf.tensor([1e-20])]
    expect(globalNorm(gradients)).toBe(13)
    expect(globalNorm([])).toBe(0)
    tf.dispose(gradients)
  })
})
