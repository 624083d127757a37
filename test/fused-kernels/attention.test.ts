import * as tf from "@tensorflow/tfjs-core"
import "@tensorflow/tfjs-core/dist/register_all_gradients.js"
import { assert, afterAll, describe, expect, it } from "vitest"
import { headsAttention, scaledDotProductAttention } from "../../adapters/tfjs/attention.ts"
import { randomValues, relativeError, valuesOn, type BackendName } from "../wasm-kernels/backends.ts"

afterAll(() => tf.setBackend("cpu"))

/** softmax(q·kᵀ + mask)·v composed from tfjs operations, whose gradients the tape derives. */
const plainAttention = (q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, mask?: tf.Tensor2D): tf.Tensor3D => {
  const scores = tf.matMul(q, k, false, true)
  return tf.matMul(tf.softmax(mask === undefined ? scores : tf.add(scores, mask)), v)
}

const GROUPS = 6, QUERIES = 10, KEYS = 7, DIM = 4

/** Output and the gradients for q, k and v of Σ out ⊙ w. */
const withGradients = (attend: (q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, mask?: tf.Tensor2D) => tf.Tensor3D, masked: boolean) => () => {
  const t = (shape: [number, number, number], seed: number) => tf.tensor3d(randomValues(shape[0] * shape[1] * shape[2], seed), shape)
  const q = t([GROUPS, QUERIES, DIM], 1)
  const k = t([GROUPS, KEYS, DIM], 2)
  const v = t([GROUPS, KEYS, DIM], 3)
  const w = t([GROUPS, QUERIES, DIM], 4)
  // A causal-style mask as CLIP's (large negative above the band); rows keep at least one key.
  const mask = masked ? tf.tensor2d(Array.from({ length: QUERIES * KEYS }, (_, i) => (i % KEYS > Math.floor(i / KEYS) ? -1e9 : 0)), [QUERIES, KEYS]) : undefined
  const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => attend(a as tf.Tensor3D, b as tf.Tensor3D, c as tf.Tensor3D, mask)
  return [f(q, k, v), ...tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f(a, b, c), w)))([q, k, v])]
}

describe("attention with recomputed, query-chunked weights (custom gradient)", () => {
  for (const backend of ["cpu", "wasm"] as Array<BackendName>) {
    for (const masked of [false, true]) {
      // 1e9 weights: one chunk, weights kept; GROUPS·KEYS·3: chunks of 3 query rows (the last one of 1), recomputed.
      it.each([["in one chunk", 1e9], ["in chunks of 3 query rows", GROUPS * KEYS * 3]])(
        `equals plain attention and its gradients ${masked ? "with a mask " : ""}%s on ${backend}`,
        async (_, budget) => {
          const ours = await valuesOn(backend, withGradients((q, k, v, mask) => headsAttention(q, k, v, mask, budget as number), masked))
          const plain = await valuesOn("cpu", withGradients(plainAttention, masked))
          expect(ours.length).toBe(4)
          ours.forEach((values, i) => expect(relativeError(values, plain[i]!), `output ${i}`).toBeLessThan(1e-5))
        }
      )
    }
  }

  it("splits and merges heads as torch's scaled_dot_product_attention (q scaled by 1/√d)", async () => {
    const [batch, tokens, heads, dim] = [2, 5, 3, 4]
    const make = (seed: number) => tf.tensor3d(randomValues(batch * tokens * heads * dim, seed), [batch, tokens, heads * dim])
    const [ours] = await valuesOn("wasm", () => scaledDotProductAttention(make(1), make(2), make(3), heads))
    assert.isDefined(ours)
    const [expected] = await valuesOn("cpu", () => {
      const split = (t: tf.Tensor3D) =>
        tf.reshape(tf.transpose(tf.reshape(t, [batch, tokens, heads, dim]), [0, 2, 1, 3]), [batch * heads, tokens, dim]) as tf.Tensor3D
      const out = plainAttention(split(tf.div(make(1), Math.sqrt(dim))), split(make(2)), split(make(3)))
      return tf.reshape(tf.transpose(tf.reshape(out, [batch, heads, tokens, dim]), [0, 2, 1, 3]), [batch, tokens, heads * dim])
    })
    assert.isDefined(expected)
    expect(relativeError(ours, expected)).toBeLessThan(1e-5)
  })

  it("keeps no tensor after a chunked forward and backward pass", async () => {
    await valuesOn("wasm", () => [])
    const before = tf.memory().numTensors
    tf.dispose(tf.tidy(withGradients((q, k, v, mask) => headsAttention(q, k, v, mask, GROUPS * KEYS * 3), true)))
    expect(tf.memory().numTensors).toBe(before)
  })
})
