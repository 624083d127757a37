import * as tf from "@tensorflow/tfjs-core"
import { getThreadsCount } from "@tensorflow/tfjs-backend-wasm"
import { cpus } from "node:os"
import { Worker } from "node:worker_threads"
import { assert, afterAll, describe, expect, it } from "vitest"
import { registerWasmTrainingKernels } from "../../adapters/tfjs/wasm-kernels/index.ts"
import { withWasmThreads } from "../../adapters/tfjs/wasm-kernels/wasm-threads.ts"
import { randomValues, relativeError, valuesOn } from "./backends.ts"

afterAll(() => tf.setBackend("cpu"))

describe("withWasmThreads", () => {
  it("starts wasm's threaded build under Node with two XNNPACK threads, and the kernels still match cpu", async () => {
    const nodeCpus = cpus().length
    expect(await withWasmThreads(2, () => tf.setBackend("wasm"))).toBe(true)
    expect(getThreadsCount()).toBe(2)
    // What it changed to get there is back as it was.
    expect((await import("node:worker_threads")).Worker).toBe(Worker)
    expect(cpus().length).toBe(nodeCpus)

    registerWasmTrainingKernels()
    const x = randomValues(2 * 8 * 8 * 16, 51)
    const dy = randomValues(2 * 8 * 8 * 8, 52)
    const gradient = () =>
      tf.engine().runKernel("Conv2DBackpropFilter", { x: tf.tensor(x, [2, 8, 8, 16]), dy: tf.tensor(dy, [2, 8, 8, 8]) }, {
        strides: 1,
        pad: [[0, 0], [1, 1], [1, 1], [0, 0]],
        dataFormat: "NHWC",
        filterShape: [3, 3, 16, 8]
      } as never) as tf.Tensor
    const [expected] = await valuesOn("cpu", gradient)
    assert.isDefined(expected)
    const [actual] = await valuesOn("wasm", gradient)
    assert.isDefined(actual)
    expect(relativeError(actual, expected)).toBeLessThan(1e-5)
  })
})
