import { Identity, type KernelConfig, type KernelFunc, type TensorInfo } from "@tensorflow/tfjs-core"
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm"

/**
 * tfjs tensors are immutable, so Identity can share its input's memory (one more reference), as the
 * cpu and webgl backends do; wasm's own copies every element. Gradients go through Identity many
 * times per step (2 156 calls in the tiny UNet's), among them copies of the [B·heads, T, T] attention
 * weights.
 */
const identity: KernelFunc = ({ inputs, backend }) => {
  const { x } = inputs as { x: TensorInfo }
  ;(backend as BackendWasm).incRef(x.dataId)
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype }
}

export const identityConfig: KernelConfig = {
  kernelName: Identity,
  backendName: "wasm",
  kernelFunc: identity
}
