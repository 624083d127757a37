import * as tf from "@tensorflow/tfjs-core"
import "@tensorflow/tfjs-core/dist/register_all_gradients.js"
import { assert, afterAll, describe, expect, it } from "vitest"
import { randomValues, relativeError, valuesOn } from "./backends.ts"

afterAll(() => tf.setBackend("cpu"))

interface Case {
  readonly name: string
  readonly a: Array<number>
  readonly b: Array<number>
}

// Linear layers and their gradients (2-D), attention over batch·heads (3-D), and broadcast batches.
const CASES: ReadonlyArray<Case> = [
  { name: "Linear [rows, in]·[in, out]", a: [37, 12], b: [12, 9] },
  { name: "attention [B·heads, T, d]·[B·heads, d, T]", a: [6, 10, 4], b: [6, 4, 10] },
  { name: "a batch against one matrix", a: [3, 5, 7], b: [7, 6] },
  { name: "one matrix against a batch", a: [5, 7], b: [4, 7, 6] },
  { name: "4-D batches", a: [2, 3, 5, 4], b: [2, 3, 4, 3] }
]

const transposed = (shape: Array<number>, swap: boolean) => swap ? [...shape.slice(0, -2), shape[shape.length - 1]!, shape[shape.length - 2]!] : shape

describe("BatchMatMul on wasm (XNNPACK for every product)", () => {
  for (const c of CASES) {
    for (const [transposeA, transposeB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      it(`matches cpu: ${c.name}, transposeA=${transposeA} transposeB=${transposeB}`, async () => {
        const aShape = transposed(c.a, transposeA)
        const bShape = transposed(c.b, transposeB)
        const a = randomValues(tf.util.sizeFromShape(aShape), 41)
        const b = randomValues(tf.util.sizeFromShape(bShape), 42)
        const product = () => tf.matMul(tf.tensor(a, aShape), tf.tensor(b, bShape), transposeA, transposeB)
        const [expected] = await valuesOn("cpu", product)
        assert.isDefined(expected)
        const [actual] = await valuesOn("wasm", product)
        assert.isDefined(actual)
        expect(actual.length).toBe(expected.length)
        expect(relativeError(actual, expected)).toBeLessThan(1e-5)
      })
    }
  }

  it("gives zeros for an empty inner dimension, like cpu", async () => {
    const product = () => tf.matMul(tf.zeros([2, 3, 0]), tf.zeros([2, 0, 4]))
    const [expected] = await valuesOn("cpu", product)
    assert.isDefined(expected)
    const [actual] = await valuesOn("wasm", product)
    assert.isDefined(actual)
    expect(Array.from(actual)).toEqual(Array.from(expected))
    expect(actual.length).toBe(24)
  })

  it("matches cpu for a fused Linear with bias and its gradients", async () => {
    const x = randomValues(9 * 6, 43)
    const w = randomValues(6 * 5, 44)
    const bias = randomValues(5, 45)
    const gradients = () => {
      const f = (xt: tf.Tensor, wt: tf.Tensor, bt: tf.Tensor) => tf.sum(tf.square(tf.fused.matMul({ a: xt as tf.Tensor2D, b: wt as tf.Tensor2D, bias: bt })))
      return tf.grads(f)([tf.tensor(x, [9, 6]), tf.tensor(w, [6, 5]), tf.tensor1d(bias)])
    }
    const expected = await valuesOn("cpu", gradients)
    const actual = await valuesOn("wasm", gradients)
    expected.forEach((e, i) => expect(relativeError(actual[i]!, e)).toBeLessThan(1e-5))
  })
})
