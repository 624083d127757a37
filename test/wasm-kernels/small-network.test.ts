import * as tf from "@tensorflow/tfjs-core"
import "@tensorflow/tfjs-core/dist/register_all_gradients.js"
import { afterAll, describe, expect, it } from "vitest"
import { relativeError, valuesOn } from "./backends.ts"
import { initParameters, loss, makeBatch, tinyNetwork, type Batch } from "./small-network.ts"

afterAll(() => tf.setBackend("cpu"))

const sample = (batch: Batch, i: number): Batch => ({
  x: tf.slice(batch.x, i, 1),
  target: tf.slice(batch.target, i, 1),
  tokens: tf.slice(batch.tokens, i, 1),
  timesteps: tf.slice(batch.timesteps, i, 1)
})

describe("training a conv + attention + GroupNorm + GEGLU + embedding network on wasm", () => {
  it("gives the loss and every parameter's gradient of cpu", async () => {
    const names: Array<string> = []
    const gradients = (config: typeof tinyNetwork, batch: Batch) => {
      const parameters = initParameters(tinyNetwork, 3)
      const { value, grads } = tf.variableGrads(() => loss(config, parameters, batch))
      names.splice(0, names.length, ...Object.keys(grads))
      tf.dispose(Object.values(parameters))
      return [value, ...Object.values(grads)]
    }
    const wholeBatch = () => gradients(tinyNetwork, makeBatch(tinyNetwork, 4))
    // cpu's ResizeNearestNeighborGrad reads dy at the wrong batch offset when batch > 1 (tfjs-backend-cpu 4.22),
    // so the reference is the mean of per-sample gradients, which equals the batch gradient: nothing mixes samples.
    const meanOfSamples = () => {
      const batch = makeBatch(tinyNetwork, 4)
      const perSample = [0, 1].map((i) => gradients({ ...tinyNetwork, batch: 1 }, sample(batch, i)))
      return perSample[0]!.map((_, k) => tf.div(tf.add(perSample[0]![k]!, perSample[1]![k]!), 2))
    }
    const expected = await valuesOn("cpu", meanOfSamples)
    const actual = await valuesOn("wasm", wholeBatch)
    expect(tinyNetwork.batch).toBe(2)
    expect(names).toContain("token_embedding")
    expect(names).toContain("down_asym.weight")
    expect(actual.length).toBe(expected.length)
    expect(relativeError(actual[0]!, expected[0]!)).toBeLessThan(1e-5)
    names.forEach((name, i) => expect(relativeError(actual[i + 1]!, expected[i + 1]!), name).toBeLessThan(1e-4))
  })
})
