import { backend_util, Conv2DBackpropFilter, type Conv2DBackpropFilterAttrs, type KernelConfig, type KernelFunc, type TensorInfo } from "@tensorflow/tfjs-core"
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm"
import { release, runKernel, slice, transpose } from "./kernel-calls.ts"

/**
 * dW[i, j, c, o] = Σ_{b, y, x} xpad[b, y·s + i, x·s + j, c] · dy[b, y, x, o] is itself a convolution:
 * over the input seen as [Cin, H, W, B] (channels become the batch, the batch the channels) with
 * dy seen as a filter [Ho, Wo, B, Cout], where the forward stride becomes the dilation and the
 * output is [Cin, kh, kw, Cout]. wasm's XNNPACK convolution computes it; wasm has no kernel of its own.
 */
const filterGradientNhwc = (backend: BackendWasm, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo => {
  const { filterHeight, filterWidth, inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth, inChannels, outChannels } = info
  const { top, left } = info.padInfo
  // Rows/columns past the last window the forward pass read are cut (a negative pad); they add nothing.
  const bottom = filterHeight + (outHeight - 1) * strideHeight - inHeight - top
  const right = filterWidth + (outWidth - 1) * strideWidth - inWidth - left
  const input = transpose(backend, x, [3, 1, 2, 0])
  const filter = transpose(backend, dy, [1, 2, 0, 3])
  const grad = runKernel(backend, "Conv2D", { x: input, filter }, {
    strides: [1, 1],
    pad: [[0, 0], [top, Math.max(bottom, 0)], [left, Math.max(right, 0)], [0, 0]],
    dilations: [strideHeight, strideWidth],
    dataFormat: "NHWC"
  })
  release(backend, input, filter)
  const exact = bottom < 0 || right < 0 ? slice(backend, grad, [0, 0, 0, 0], [inChannels, filterHeight, filterWidth, outChannels]) : grad
  if (exact !== grad) release(backend, grad)
  const hwio = transpose(backend, exact, [1, 2, 0, 3])
  release(backend, exact)
  return hwio
}

const conv2dBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as BackendWasm
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo }
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs
  const format = backend_util.convertConv2DDataFormat(dataFormat)
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    format
  )
  if (format === "channelsLast") return filterGradientNhwc(wasm, x, dy, info)
  const xNhwc = transpose(wasm, x, [0, 2, 3, 1])
  const dyNhwc = transpose(wasm, dy, [0, 2, 3, 1])
  const grad = filterGradientNhwc(wasm, xNhwc, dyNhwc, info)
  release(wasm, xNhwc, dyNhwc)
  return grad
}

export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: "wasm",
  kernelFunc: conv2dBackpropFilter
}
