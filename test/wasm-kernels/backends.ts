import * as tf from "@tensorflow/tfjs-core"
import "@tensorflow/tfjs-backend-cpu"
import { registerWasmTrainingKernels } from "../../adapters/tfjs/wasm-kernels/index.ts"

export type BackendName = "cpu" | "wasm"

/** Activates a backend; wasm gets the training kernels. */
export const useBackend = async (name: BackendName): Promise<void> => {
  if (name === "wasm") registerWasmTrainingKernels()
  if (!(await tf.setBackend(name))) throw new Error(`backend ${name} failed to initialise`)
  await tf.ready()
}

/** Runs `f` on `name` and returns its tensors' values (read outside the tidy: see DESIGN §4). */
export const valuesOn = async (name: BackendName, f: () => tf.Tensor | Array<tf.Tensor>): Promise<Array<Float32Array | Int32Array>> => {
  await useBackend(name)
  const result = tf.tidy(f)
  const tensors = Array.isArray(result) ? result : [result]
  const values = await Promise.all(tensors.map((t) => t.data() as Promise<Float32Array | Int32Array>))
  tf.dispose(tensors)
  return values
}

/** Normal draws from a fixed seed, as a plain array both backends can turn into the same tensor. */
export const randomValues = (size: number, seed: number): Float32Array => {
  // Park–Miller generator + Box–Muller: deterministic and backend-independent.
  let state = seed % 2147483647 || 1
  const uniform = () => (state = (state * 48271) % 2147483647) / 2147483647
  return Float32Array.from({ length: size }, () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()))
}

/** Largest |actual − expected| relative to the largest |expected| (how far apart two results are, as a fraction of their scale). */
export const relativeError = (actual: ArrayLike<number>, expected: ArrayLike<number>): number => {
  if (actual.length !== expected.length) throw new Error(`lengths differ: ${actual.length} vs ${expected.length}`)
  let difference = 0
  let scale = 0
  for (let i = 0; i < expected.length; i++) {
    difference = Math.max(difference, Math.abs(actual[i]! - expected[i]!))
    scale = Math.max(scale, Math.abs(expected[i]!))
  }
  return scale === 0 ? difference : difference / scale
}
