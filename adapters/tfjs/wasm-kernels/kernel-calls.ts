import { getKernel, type NamedAttrMap, type NamedTensorInfoMap, type TensorInfo } from "@tensorflow/tfjs-core"
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm"

/**
 * Calls between wasm kernels. A kernel built from other kernels runs them directly (no engine: no
 * tape, no profiling, no tensor bookkeeping), so each intermediate it makes it must release itself.
 */

/** Runs the wasm backend's kernel `kernelName` on backend-level tensors. */
export const runKernel = (backend: BackendWasm, kernelName: string, inputs: NamedTensorInfoMap, attrs: object = {}): TensorInfo => {
  const kernel = getKernel(kernelName, "wasm")
  if (kernel === undefined) throw new Error(`wasm kernel ${kernelName} is not registered (import @tensorflow/tfjs-backend-wasm)`)
  return kernel.kernelFunc({ inputs, backend, attrs: attrs as NamedAttrMap }) as TensorInfo
}

/** Frees intermediates made by `runKernel` (a kernel's inputs are the engine's and are never passed here). */
export const release = (backend: BackendWasm, ...infos: ReadonlyArray<TensorInfo>): void => {
  for (const info of infos) backend.disposeData(info.dataId)
}

export const transpose = (backend: BackendWasm, x: TensorInfo, perm: ReadonlyArray<number>): TensorInfo => runKernel(backend, "Transpose", { x }, { perm })

export const reshape = (backend: BackendWasm, x: TensorInfo, shape: ReadonlyArray<number>): TensorInfo => runKernel(backend, "Reshape", { x }, { shape })

export const slice = (backend: BackendWasm, x: TensorInfo, begin: ReadonlyArray<number>, size: ReadonlyArray<number>): TensorInfo =>
  runKernel(backend, "Slice", { x }, { begin, size })
