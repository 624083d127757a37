import { backend_util, Conv2DBackpropInput, type Conv2DBackpropInputAttrs, type KernelConfig, type KernelFunc, type TensorInfo } from "@tensorflow/tfjs-core"
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm"
import { shape4 } from "../kernel-shape.ts"
import { release, reshape, runKernel, slice, transpose } from "./kernel-calls.ts"

/**
 * Inserts `stride - 1` zeros after every row and column of dy [B, Ho, Wo, C] (also after the last
 * ones): [B, Ho·sh, Wo·sw, C]. Two pads over reshaped views do it without a scatter kernel.
 */
const dilate = (backend: BackendWasm, dy: TensorInfo, strideHeight: number, strideWidth: number): TensorInfo => {
  const [batch, height, width, channels] = shape4("Conv2DBackpropInput", "dy", dy.shape)
  let current = dy
  const step = (shape: ReadonlyArray<number>, after: number) => {
    const view = reshape(backend, current, shape)
    const padded = runKernel(backend, "PadV2", { x: view }, { paddings: [[0, 0], [0, 0], [0, after], [0, 0]], constantValue: 0 })
    release(backend, view)
    if (current !== dy) release(backend, current)
    current = padded
  }
  if (strideWidth > 1) step([batch * height, width, 1, channels], strideWidth - 1)
  if (strideHeight > 1) step([batch, height, 1, width * strideWidth * channels], strideHeight - 1)
  const out = reshape(backend, current, [batch, height * strideHeight, width * strideWidth, channels])
  if (current !== dy) release(backend, current)
  return out
}

/**
 * dx is the forward convolution of dy, dilated by the stride, with the filter flipped in space and
 * its in/out channels swapped: XNNPACK's convolution instead of wasm's own Conv2DBackpropInput,
 * a scalar loop about 9× slower than the forward convolution on the same shapes.
 */
const inputGradientNhwc = (backend: BackendWasm, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo => {
  const { filterHeight, filterWidth, inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth, batchSize, inChannels } = info
  const spread = strideHeight > 1 || strideWidth > 1 ? dilate(backend, dy, strideHeight, strideWidth) : dy
  // Padding of the spread dy so the output is exactly H × W; the zeros `dilate` appended count as padding.
  const top = filterHeight - 1 - info.padInfo.top
  const left = filterWidth - 1 - info.padInfo.left
  const bottom = inHeight - 1 + info.padInfo.top - (outHeight - 1) * strideHeight - (strideHeight - 1)
  const right = inWidth - 1 + info.padInfo.left - (outWidth - 1) * strideWidth - (strideWidth - 1)
  const reversed = runKernel(backend, "Reverse", { x: filter }, { dims: [0, 1] })
  const flipped = transpose(backend, reversed, [0, 1, 3, 2])
  release(backend, reversed)
  const full = runKernel(backend, "Conv2D", { x: spread, filter: flipped }, {
    strides: [1, 1],
    pad: [[0, 0], [Math.max(top, 0), Math.max(bottom, 0)], [Math.max(left, 0), Math.max(right, 0)], [0, 0]],
    dilations: [1, 1],
    dataFormat: "NHWC"
  })
  release(backend, flipped)
  if (spread !== dy) release(backend, spread)
  // A negative pad is a crop: the convolution ran on the uncropped input, so its output is cropped instead.
  if (top >= 0 && bottom >= 0 && left >= 0 && right >= 0) return full
  const dx = slice(backend, full, [0, Math.max(-top, 0), Math.max(-left, 0), 0], [batchSize, inHeight, inWidth, inChannels])
  release(backend, full)
  return dx
}

const conv2dBackpropInput: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as BackendWasm
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo }
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as Conv2DBackpropInputAttrs
  const format = backend_util.convertConv2DDataFormat(dataFormat)
  const info = backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    format
  )
  if (format === "channelsLast") return inputGradientNhwc(wasm, dy, filter, info)
  const dyNhwc = transpose(wasm, dy, [0, 2, 3, 1])
  const dxNhwc = inputGradientNhwc(wasm, dyNhwc, filter, info)
  release(wasm, dyNhwc)
  const dx = transpose(wasm, dxNhwc, [0, 3, 1, 2])
  release(wasm, dxNhwc)
  return dx
}

export const conv2dBackpropInputConfig: KernelConfig = {
  kernelName: Conv2DBackpropInput,
  backendName: "wasm",
  kernelFunc: conv2dBackpropInput
}
