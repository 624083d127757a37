import * as tf from "@tensorflow/tfjs-core"
import { assert, afterAll, describe, expect, it } from "vitest"
import { randomValues, relativeError, valuesOn } from "./backends.ts"

type Pad = "same" | "valid" | number | Array<[number, number]>
interface Case {
  readonly name: string
  readonly input: [number, number, number, number]
  readonly filter: [number, number, number, number]
  readonly stride: number | [number, number]
  readonly pad: Pad
  readonly format?: "NHWC" | "NCHW"
}

const torch = (top: number, bottom: number, left: number, right: number): Array<[number, number]> => [[0, 0], [top, bottom], [left, right], [0, 0]]

// Every convolution the UNet, VAE and ControlNet make, plus the odd sizes and paddings that take the kernels' other branches.
const CASES: ReadonlyArray<Case> = [
  { name: "3×3 stride 1, torch padding 1", input: [2, 9, 8, 5], filter: [3, 3, 5, 6], stride: 1, pad: torch(1, 1, 1, 1) },
  { name: "3×3 stride 1, same", input: [2, 8, 8, 4], filter: [3, 3, 4, 4], stride: 1, pad: "same" },
  { name: "3×3 stride 1, valid", input: [1, 7, 6, 3], filter: [3, 3, 3, 5], stride: 1, pad: "valid" },
  { name: "3×3 stride 1, numeric padding 1", input: [2, 6, 6, 3], filter: [3, 3, 3, 2], stride: 1, pad: 1 },
  { name: "1×1 valid (proj_in/out, shortcuts, quant_conv)", input: [2, 5, 7, 6], filter: [1, 1, 6, 4], stride: 1, pad: "valid" },
  { name: "3×3 stride 2, torch padding 1 (UNet downsampler)", input: [2, 8, 8, 4], filter: [3, 3, 4, 4], stride: 2, pad: torch(1, 1, 1, 1) },
  { name: "3×3 stride 2, torch padding 1, odd size", input: [2, 9, 7, 3], filter: [3, 3, 3, 4], stride: 2, pad: torch(1, 1, 1, 1) },
  { name: "3×3 stride 2, bottom/right padding (VAE downsampler)", input: [2, 8, 8, 4], filter: [3, 3, 4, 3], stride: 2, pad: torch(0, 1, 0, 1) },
  { name: "3×3 stride 2, same", input: [1, 7, 8, 3], filter: [3, 3, 3, 2], stride: 2, pad: "same" },
  { name: "3×3 stride 2, valid, unread last row", input: [2, 8, 9, 3], filter: [3, 3, 3, 2], stride: 2, pad: "valid" },
  { name: "4×4 stride [2, 1], asymmetric padding", input: [1, 8, 6, 2], filter: [4, 4, 2, 3], stride: [2, 1], pad: torch(2, 1, 1, 2) },
  { name: "1×1 with padding larger than the kernel", input: [1, 4, 4, 2], filter: [1, 1, 2, 3], stride: 1, pad: torch(1, 1, 1, 1) },
  { name: "3×3 stride 2 NCHW, torch padding 1", input: [2, 4, 8, 8], filter: [3, 3, 4, 3], stride: 2, pad: [[0, 0], [0, 0], [1, 1], [1, 1]], format: "NCHW" }
]

const outputShape = (c: Case): Array<number> =>
  tf.backend_util.computeConv2DInfo(c.input, c.filter, c.stride, 1, c.pad as never, undefined, false, c.format === "NCHW" ? "channelsFirst" : "channelsLast")
    .outShape

afterAll(() => tf.setBackend("cpu"))

describe("Conv2DBackpropFilter on wasm (as a convolution over transposed tensors)", () => {
  for (const c of CASES) {
    it(`matches cpu: ${c.name}`, async () => {
      const dyShape = outputShape(c)
      const x = randomValues(tf.util.sizeFromShape(c.input), 11)
      const dy = randomValues(tf.util.sizeFromShape(dyShape), 12)
      const gradient = () =>
        tf.engine().runKernel("Conv2DBackpropFilter", { x: tf.tensor(x, c.input), dy: tf.tensor(dy, dyShape) }, {
          strides: c.stride,
          pad: c.pad,
          dataFormat: c.format ?? "NHWC",
          filterShape: c.filter
        } as never) as tf.Tensor
      const [expected] = await valuesOn("cpu", gradient)
      assert.isDefined(expected)
      const [actual] = await valuesOn("wasm", gradient)
      assert.isDefined(actual)
      expect(actual.length).toBe(tf.util.sizeFromShape(c.filter))
      expect(relativeError(actual, expected)).toBeLessThan(1e-5)
    })
  }
})

describe("Conv2DBackpropInput on wasm (as a convolution with the flipped filter)", () => {
  for (const c of CASES) {
    it(`matches cpu: ${c.name}`, async () => {
      const dyShape = outputShape(c)
      const filter = randomValues(tf.util.sizeFromShape(c.filter), 21)
      const dy = randomValues(tf.util.sizeFromShape(dyShape), 22)
      const gradient = () =>
        tf.engine().runKernel("Conv2DBackpropInput", { dy: tf.tensor(dy, dyShape), filter: tf.tensor(filter, c.filter) }, {
          strides: c.stride,
          pad: c.pad,
          dataFormat: c.format ?? "NHWC",
          inputShape: c.input
        } as never) as tf.Tensor
      const [expected] = await valuesOn("cpu", gradient)
      assert.isDefined(expected)
      const [actual] = await valuesOn("wasm", gradient)
      assert.isDefined(actual)
      expect(actual.length).toBe(tf.util.sizeFromShape(c.input))
      expect(relativeError(actual, expected)).toBeLessThan(1e-5)
    })
  }
})
