import * as tf from "@tensorflow/tfjs-core"
import "@tensorflow/tfjs-core/dist/register_all_gradients.js"
import { afterAll, describe, expect, it } from "vitest"
import { randomValues, relativeError, valuesOn } from "./backends.ts"

afterAll(() => tf.setBackend("cpu"))

const bothBackends = async (f: () => tf.Tensor | Array<tf.Tensor>) => {
  const expected = await valuesOn("cpu", f)
  const actual = await valuesOn("wasm", f)
  return { expected, actual }
}

describe("UnsortedSegmentSum on wasm (as a summing ScatterNd)", () => {
  it("sums rows with repeated ids like cpu (an embedding gradient)", async () => {
    const x = randomValues(7 * 5, 31)
    const ids = [3, 0, 3, 5, 0, 3, 1]
    const { expected, actual } = await bothBackends(() => tf.unsortedSegmentSum(tf.tensor(x, [7, 5]), tf.tensor1d(ids, "int32"), 6))
    expect(actual[0]!.length).toBe(6 * 5)
    expect(relativeError(actual[0]!, expected[0]!)).toBeLessThan(1e-5)
  })

  it("handles rank-1 and rank-3 values and int32 values", async () => {
    const x1 = randomValues(6, 32)
    const x3 = randomValues(6 * 2 * 3, 33)
    const ints = [4, -2, 7, 1, 1, 9]
    const ids = [1, 2, 1, 0, 2, 2]
    const { expected, actual } = await bothBackends(() => [
      tf.unsortedSegmentSum(tf.tensor1d(x1), tf.tensor1d(ids, "int32"), 3),
      tf.unsortedSegmentSum(tf.tensor(x3, [6, 2, 3]), tf.tensor1d(ids, "int32"), 4),
      tf.unsortedSegmentSum(tf.tensor1d(ints, "int32"), tf.tensor1d(ids, "int32"), 3)
    ])
    expect(actual.map((a) => a.length)).toEqual([3, 4 * 6, 3])
    for (let i = 0; i < 2; i++) expect(relativeError(actual[i]!, expected[i]!)).toBeLessThan(1e-5)
    expect(Array.from(actual[2]!)).toEqual(Array.from(expected[2]!))
  })

  it("drops ids outside [0, numSegments) as cpu does", async () => {
    const x = randomValues(5 * 4, 34)
    const ids = [2, -1, 0, 7, 2]
    const { expected, actual } = await bothBackends(() => tf.unsortedSegmentSum(tf.tensor(x, [5, 4]), tf.tensor1d(ids, "int32"), 3))
    expect(actual[0]!.length).toBe(3 * 4)
    expect(relativeError(actual[0]!, expected[0]!)).toBeLessThan(1e-5)
  })

  it("gives a gather's gradient (token embedding table) like cpu", async () => {
    const table = randomValues(10 * 6, 35)
    const weights = randomValues(2 * 4 * 6, 36)
    const tokens = [[1, 4, 4, 9], [0, 1, 1, 1]]
    const gradient = () => {
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, tf.tensor2d(tokens, [2, 4], "int32")), tf.tensor(weights, [2, 4, 6]))))
      return g(tf.tensor(table, [10, 6]))
    }
    const { expected, actual } = await bothBackends(gradient)
    expect(relativeError(actual[0]!, expected[0]!)).toBeLessThan(1e-5)
  })
})
