// The wasm backend registers its own kernels when imported; ours must come after to replace them.
import "@tensorflow/tfjs-backend-wasm"
import { getKernel, registerKernel, unregisterKernel, type KernelConfig } from "@tensorflow/tfjs-core"
import { batchMatMulConfig } from "./batch-mat-mul.ts"
import { conv2dBackpropFilterConfig } from "./conv2d-backprop-filter.ts"
import { conv2dBackpropInputConfig } from "./conv2d-backprop-input.ts"
import { identityConfig } from "./identity.ts"
import { unsortedSegmentSumConfig } from "./unsorted-segment-sum.ts"

/**
 * Kernels the `wasm` backend needs to train sardine's models: the ones it lacks
 * (Conv2DBackpropFilter, UnsortedSegmentSum) and faster replacements of its slow ones
 * (Conv2DBackpropInput, and BatchMatMul off its one fast case), each built from its XNNPACK-backed
 * kernels, and an Identity that shares memory instead of copying it.
 */
export const WASM_TRAINING_KERNELS: ReadonlyArray<KernelConfig> = [
  conv2dBackpropFilterConfig,
  conv2dBackpropInputConfig,
  unsortedSegmentSumConfig,
  batchMatMulConfig,
  identityConfig
]

/** Registers the training kernels on the `wasm` backend, replacing its own; calling it again changes nothing. */
export const registerWasmTrainingKernels = (): void => {
  for (const config of WASM_TRAINING_KERNELS) {
    const current = getKernel(config.kernelName, config.backendName)
    if (current?.kernelFunc === config.kernelFunc) continue
    if (current !== undefined) unregisterKernel(config.kernelName, config.backendName)
    registerKernel(config)
  }
}
