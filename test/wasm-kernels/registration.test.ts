import { getKernel } from "@tensorflow/tfjs-core"
import { describe, expect, it } from "vitest"
import { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from "../../adapters/tfjs/wasm-kernels/index.ts"

describe("registerWasmTrainingKernels", () => {
  it("puts every training kernel on wasm, replacing wasm's own, and is idempotent", () => {
    const before = WASM_TRAINING_KERNELS.map((k) => getKernel(k.kernelName, "wasm")?.kernelFunc)
    // wasm ships (slow) Conv2DBackpropInput, BatchMatMul and Identity but no Conv2DBackpropFilter or UnsortedSegmentSum.
    expect(before.map((f) => f !== undefined)).toEqual(
      WASM_TRAINING_KERNELS.map((k) => ["Conv2DBackpropInput", "BatchMatMul", "Identity"].includes(k.kernelName))
    )
    registerWasmTrainingKernels()
    registerWasmTrainingKernels()
    for (const config of WASM_TRAINING_KERNELS) expect(getKernel(config.kernelName, "wasm").kernelFunc).toBe(config.kernelFunc)
  })
})
