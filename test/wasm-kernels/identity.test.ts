import * as tf from "@tensorflow/tfjs-core"
import { afterAll, describe, expect, it } from "vitest"
import { randomValues, useBackend } from "./backends.ts"

afterAll(() => tf.setBackend("cpu"))

describe("Identity on wasm (shared memory)", () => {
  it("gives the input's values without a copy, and they outlive the input", async () => {
    await useBackend("wasm")
    const values = randomValues(64, 61)
    const x = tf.tensor(values, [4, 16])
    const buffers = () => tf.backend().numDataIds()
    const before = buffers()
    const y = tf.clone(x)
    expect(buffers()).toBe(before)
    x.dispose()
    expect(Array.from(await y.data())).toEqual(Array.from(values))
    expect(y.shape).toEqual([4, 16])
    const z = tf.clone(tf.tensor(["a", "b"]))
    expect(await z.data()).toEqual(["a", "b"])
    tf.dispose([y, z])
  })
})
