import { UnsortedSegmentSum, util, type KernelConfig, type KernelFunc, type TensorInfo, type UnsortedSegmentSumAttrs } from "@tensorflow/tfjs-core"
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm"
import { release, reshape, runKernel } from "./kernel-calls.ts"

/**
 * out[s, …] = Σ_{n : ids[n] = s} x[n, …] (the gradient of a gather, e.g. of an embedding table) as
 * wasm's ScatterNd, which sums duplicate indices: O(N·D) instead of a one-hot product's O(S·N·D),
 * which matters for a 49 408-token vocabulary. ScatterNd does not check bounds, and ids outside
 * [0, numSegments) are dropped (as on cpu and TensorFlow): they go to one extra segment, cut off after.
 */
const unsortedSegmentSum: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as BackendWasm
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo }
  const { numSegments } = attrs as unknown as UnsortedSegmentSumAttrs
  const count = util.sizeFromShape(segmentIds.shape)
  const inner = x.shape.slice(segmentIds.shape.length)
  const ids = wasm.typedArrayFromHeap(segmentIds) as Int32Array
  const dropped = ids.some((id) => id < 0 || id >= numSegments)
  const indices = dropped
    ? wasm.makeOutput([count, 1], "int32", undefined, Int32Array.from(ids, (id) => (id < 0 || id >= numSegments ? numSegments : id)))
    : reshape(wasm, segmentIds, [count, 1])
  const updates = reshape(wasm, x, [count, ...inner])
  const segments = dropped ? numSegments + 1 : numSegments
  const sums = runKernel(wasm, "ScatterNd", { indices, updates }, { shape: [segments, ...inner] })
  release(wasm, indices, updates)
  if (!dropped) return sums
  const kept = runKernel(wasm, "Slice", { x: sums }, { begin: [0, ...inner.map(() => 0)], size: [numSegments, ...inner] })
  release(wasm, sums)
  return kept
}

export const unsortedSegmentSumConfig: KernelConfig = {
  kernelName: UnsortedSegmentSum,
  backendName: "wasm",
  kernelFunc: unsortedSegmentSum
}
