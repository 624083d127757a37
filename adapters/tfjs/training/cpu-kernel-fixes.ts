import { getKernel, registerKernel, unregisterKernel, type KernelConfig, type TensorInfo } from "@tensorflow/tfjs-core"
import { shape4 } from "../kernel-shape.ts"

/**
 * tfjs-backend-cpu 4.22's ResizeNearestNeighborGrad reads `dy` at the *image's* batch offset, so for a
 * batch of more than one image every image after the first gets a wrong gradient (and it ignores
 * `halfPixelCenters`). Every UNet and VAE decoder upsamples this way, so training on cpu needs this
 * replacement: each dy element is added to the input pixel the forward kernel copied it from.
 */

interface CpuBackend {
  readonly data: { get: (dataId: object) => { values: ArrayLike<number> } }
  makeTensorInfo: (shape: ReadonlyArray<number>, dtype: "float32", values: Float32Array) => TensorInfo
}

/** The source index the cpu forward kernel reads for output index `i` (same arithmetic, same rounding). */
const sourceIndex = (i: number, ratio: number, inputSize: number, alignCorners: boolean, halfPixelCenters: boolean) => {
  const fraction = halfPixelCenters ? ratio * (i + 0.5) : ratio * i
  const nearest = Math.min(inputSize - 1, alignCorners ? Math.round(fraction) : Math.floor(fraction))
  return halfPixelCenters ? Math.max(0, nearest) : nearest
}

const resizeNearestNeighborGrad: KernelConfig["kernelFunc"] = ({ inputs, backend, attrs }) => {
  const { images, dy } = inputs as { images: TensorInfo; dy: TensorInfo }
  const { alignCorners, halfPixelCenters } = attrs as { alignCorners: boolean; halfPixelCenters?: boolean }
  const cpu = backend as unknown as CpuBackend
  const [batch, inHeight, inWidth, channels] = shape4("ResizeNearestNeighborGrad", "images", images.shape)
  const [, outHeight, outWidth] = shape4("ResizeNearestNeighborGrad", "dy", dy.shape)
  const corners = (outSize: number) => alignCorners && outSize > 1
  const rowRatio = (corners(outHeight) ? inHeight - 1 : inHeight) / (corners(outHeight) ? outHeight - 1 : outHeight)
  const colRatio = (corners(outWidth) ? inWidth - 1 : inWidth) / (corners(outWidth) ? outWidth - 1 : outWidth)
  const half = halfPixelCenters === true
  const rows = Array.from({ length: outHeight }, (_, r) => sourceIndex(r, rowRatio, inHeight, alignCorners, half))
  const cols = Array.from({ length: outWidth }, (_, c) => sourceIndex(c, colRatio, inWidth, alignCorners, half))
  const dyValues = cpu.data.get(dy.dataId).values
  const out = new Float32Array(batch * inHeight * inWidth * channels)
  let at = 0
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < outHeight; r++) {
      const row = (b * inHeight + rows[r]!) * inWidth
      for (let c = 0; c < outWidth; c++) {
        const base = (row + cols[c]!) * channels
        for (let d = 0; d < channels; d++) out[base + d]! += dyValues[at++]!
      }
    }
  }
  return cpu.makeTensorInfo(images.shape, "float32", out)
}

export const cpuResizeNearestNeighborGradConfig: KernelConfig = {
  kernelName: "ResizeNearestNeighborGrad",
  backendName: "cpu",
  kernelFunc: resizeNearestNeighborGrad
}

/** Replaces the faulty cpu kernels; calling it again changes nothing. */
export const registerCpuKernelFixes = (): void => {
  const config = cpuResizeNearestNeighborGradConfig
  const current = getKernel(config.kernelName, config.backendName)
  if (current?.kernelFunc === config.kernelFunc) return
  if (current !== undefined) unregisterKernel(config.kernelName, config.backendName)
  registerKernel(config)
}
