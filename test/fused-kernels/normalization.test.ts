import * as tf from "@tensorflow/tfjs-core"
import "@tensorflow/tfjs-core/dist/register_all_gradients.js"
import { afterAll, describe, expect, it } from "vitest"
import { groupNorm, layerNorm } from "../../adapters/tfjs/normalization.ts"
import type { Layers } from "../../adapters/tfjs/layers.ts"
import { randomValues, relativeError, valuesOn, type BackendName } from "../wasm-kernels/backends.ts"

afterAll(() => tf.setBackend("cpu"))

/** torch's GroupNorm written with tfjs operations (moments over each sample's group), for NHWC x. */
const composedGroupNorm = (x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, groups: number, eps: number): tf.Tensor => {
  const [b, h, w, c] = x.shape
  const grouped = tf.reshape(x, [b, h * w, groups, c / groups])
  const { mean, variance } = tf.moments(grouped, [1, 3], true)
  const normed = tf.reshape(tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, eps))), x.shape)
  return tf.add(tf.mul(normed, gamma), beta)
}

const composedLayerNorm = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor => {
  const { mean, variance } = tf.moments(x, -1, true)
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta)
}

const affineLayers = (gamma: tf.Tensor, beta: tf.Tensor): Layers => ({
  parameter: (name) => (name.endsWith(".weight") ? gamma : beta),
  has: () => true,
  linear: () => {
    throw new Error("not used")
  },
  conv2d: () => {
    throw new Error("not used")
  }
})

/** Output and gradients for x, gamma and beta of Σ y ⊙ w, with an offset, spread-out input (as activations are). */
const withGradients = (shape: Array<number>, f: (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor) => () => {
  const channels = shape[shape.length - 1]!
  const size = shape.reduce((a, b) => a * b, 1)
  const x = tf.add(tf.mul(tf.tensor(randomValues(size, 11), shape), 3), 1.5)
  const gamma = tf.add(tf.tensor(randomValues(channels, 12)), 1)
  const beta = tf.tensor(randomValues(channels, 13))
  const w = tf.tensor(randomValues(size, 14), shape)
  const grads = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f(a, g, b), w)))([x, gamma, beta])
  return [f(x, gamma, beta), ...grads]
}

const cases: Array<[string, Array<number>, number]> = [
  ["GroupNorm, 32 groups of 2 channels", [2, 8, 8, 64], 32],
  ["GroupNorm, 32 groups of 3 channels", [3, 4, 4, 96], 32],
  ["GroupNorm, one channel per group", [2, 5, 3, 32], 32],
  ["GroupNorm, one group", [2, 4, 4, 6], 1]
]

describe("fused group and layer normalisation (one kernel forward, one backward)", () => {
  for (const backend of ["cpu", "wasm"] as Array<BackendName>) {
    it.each(cases)(`%s equals the tfjs-composed GroupNorm and its gradients on ${backend}`, async (_, shape, groups) => {
      const fused = await valuesOn(backend, withGradients(shape, (x, g, b) => groupNorm(affineLayers(g, b), "norm", x as tf.Tensor4D, groups, 1e-5)))
      const composed = await valuesOn("cpu", withGradients(shape, (x, g, b) => composedGroupNorm(x as tf.Tensor4D, g, b, groups, 1e-5)))
      expect(fused.length).toBe(4)
      fused.forEach((values, i) => expect(relativeError(values, composed[i]!), `output ${i}`).toBeLessThan(1e-5))
    })

    it(`LayerNorm over the last axis equals the tfjs-composed one and its gradients on ${backend}`, async () => {
      const shape = [2, 7, 24]
      const fused = await valuesOn(backend, withGradients(shape, (x, g, b) => layerNorm(affineLayers(g, b), "norm", x, 1e-5)))
      const composed = await valuesOn("cpu", withGradients(shape, (x, g, b) => composedLayerNorm(x, g, b, 1e-5)))
      fused.forEach((values, i) => expect(relativeError(values, composed[i]!), `output ${i}`).toBeLessThan(1e-5))
    })
  }

  it("keeps no tensor after a forward and backward pass", async () => {
    await valuesOn("wasm", () => [])
    const before = tf.memory().numTensors
    const out = tf.tidy(withGradients([2, 4, 4, 64], (x, g, b) => groupNorm(affineLayers(g, b), "norm", x as tf.Tensor4D, 32, 1e-6)))
    tf.dispose(out)
    expect(tf.memory().numTensors).toBe(before)
  })
})
