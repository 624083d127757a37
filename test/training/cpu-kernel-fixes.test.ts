import * as tf from "@tensorflow/tfjs-core"
import "@tensorflow/tfjs-backend-cpu"
import "../../adapters/tfjs/training/register-gradients.ts"
import { beforeAll, describe, expect, it } from "vitest"
import { registerCpuKernelFixes } from "../../adapters/tfjs/training/cpu-kernel-fixes.ts"

/**
 * The cpu backend's nearest-neighbour resize gradient, replaced because tfjs-backend-cpu 4.22 reads the
 * wrong batch rows of dy. f(x) = Σ resize(x)·w is linear, so ∂f/∂x_i is exactly f(e_i): the gradient is
 * checked element by element against the forward kernel itself, for every corner mode tfjs allows.
 */

const CASES: ReadonlyArray<readonly [shape: [number, number, number, number], size: [number, number], alignCorners: boolean, halfPixelCenters: boolean]> = [
  [[2, 4, 4, 3], [8, 8], false, false],
  [[3, 3, 5, 2], [6, 10], false, false],
  [[2, 3, 3, 1], [7, 5], true, false],
  [[2, 3, 3, 2], [7, 5], false, true]
]

describe("cpu ResizeNearestNeighborGrad", () => {
  beforeAll(async () => {
    registerCpuKernelFixes()
    await tf.setBackend("cpu")
  })

  it.each(CASES)("for %j → %j (alignCorners %s, halfPixelCenters %s) is the gradient of the forward resize", (shape, size, alignCorners, halfPixelCenters) => {
    const weights = tf.randomNormal([shape[0], size[0], size[1], shape[3]], 0, 1, "float32", 2)
    const f = (input: tf.Tensor) =>
      tf.sum(tf.mul(tf.image.resizeNearestNeighbor(input as tf.Tensor4D, size, alignCorners, halfPixelCenters), weights)) as tf.Scalar
    const gradient = tf.tidy(() => tf.grad(f)(tf.randomNormal(shape, 0, 1, "float32", 1))).dataSync()
    const count = shape.reduce((a, b) => a * b, 1)
    for (let i = 0; i < count; i++) {
      const basis = new Float32Array(count)
      basis[i] = 1
      const exact = tf.tidy(() => f(tf.tensor4d(basis, shape))).dataSync()[0]!
      expect(Math.abs(gradient[i]! - exact), `element ${i}`).toBeLessThan(1e-5)
    }
    weights.dispose()
  })
})
