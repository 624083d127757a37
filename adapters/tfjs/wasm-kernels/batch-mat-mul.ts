import { BatchMatMul, broadcast_util, util, type BatchMatMulAttrs, type KernelConfig, type KernelFunc, type TensorInfo } from "@tensorflow/tfjs-core"
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm"
import { lastTwo } from "../kernel-shape.ts"
import { release, transpose } from "./kernel-calls.ts"

/**
 * wasm's BatchMatMul reaches XNNPACK's fully-connected operator only for one untransposed
 * [1, M, K]·[1, K, N] product; anything else (the transposed products of every Linear layer's
 * gradient, the batched products of attention) runs a scalar triple loop about 8× slower.
 * This kernel transposes explicitly and feeds every product of a batch to XNNPACK through views
 * into the operands and the output: wasm tensors registered at offsets of a parent's memory.
 */

type XnnBatchMatMul = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: number,
  transposeB: number,
  outId: number
) => void

const shapeBytes = (shape: ReadonlyArray<number>) => new Uint8Array(new Int32Array(shape).buffer)

/** A [1, rows, cols] float32 view of `parent` starting at element `offset`; no copy. */
const view = (backend: BackendWasm, parent: TensorInfo, offset: number, rows: number, cols: number): TensorInfo =>
  backend.makeOutput([1, rows, cols], "float32", backend.getMemoryOffset(parent.dataId) + 4 * offset)

/** Forgets a view without freeing its memory, which belongs to the parent (and drops XNNPACK's operator cached on it). */
const releaseView = (backend: BackendWasm, v: TensorInfo): void => {
  backend.wasm.tfjs.disposeData(backend.dataIdMap.get(v.dataId)!.id)
  backend.dataIdMap.delete(v.dataId)
}

/** Swaps the last two axes (an explicit transpose), or returns `x` untouched. */
const lastTwoSwapped = (backend: BackendWasm, x: TensorInfo, swap: boolean): TensorInfo => {
  if (!swap) return x
  const perm = x.shape.map((_, i) => i)
  const r = perm.length
  ;[perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!]
  return transpose(backend, x, perm)
}

const batchMatMul: KernelFunc = ({ inputs, backend, attrs }) => {
  const wasm = backend as BackendWasm
  const { a, b } = inputs as { a: TensorInfo; b: TensorInfo }
  const { transposeA, transposeB } = attrs as unknown as BatchMatMulAttrs
  if (a.dtype !== "float32" || b.dtype !== "float32") throw new Error("BatchMatMul on wasm takes float32 tensors only")
  const aOuter = a.shape.slice(0, -2)
  const bOuter = b.shape.slice(0, -2)
  const outer = broadcast_util.assertAndGetBroadcastShape(aOuter, bOuter)
  const [aRows, aCols] = lastTwo("BatchMatMul", "a", a.shape)
  const [bRows, bCols] = lastTwo("BatchMatMul", "b", b.shape)
  const [m, k] = transposeA ? [aCols, aRows] : [aRows, aCols]
  const [kb, n] = transposeB ? [bCols, bRows] : [bRows, bCols]
  if (k !== kb) throw new Error(`BatchMatMul: inner dimensions ${k} and ${kb} of shapes ${a.shape} and ${b.shape} differ`)
  const out = wasm.makeOutput([...outer, m, n], "float32")
  const batches = util.sizeFromShape(outer)
  // Like tfjs' other backends, a batch broadcasts only when one operand has a single matrix.
  const aStep = util.sizeFromShape(aOuter) === 1 ? 0 : m * k
  const bStep = util.sizeFromShape(bOuter) === 1 ? 0 : k * n
  if (batches * m * n === 0) return out
  if (k === 0) {
    // An empty sum: XNNPACK is not asked, the (uninitialised) output is zeroed.
    wasm.typedArrayFromHeap(out).fill(0)
    return out
  }
  const left = lastTwoSwapped(wasm, a, transposeA)
  const right = lastTwoSwapped(wasm, b, transposeB)
  const module = wasm.wasm as unknown as { cwrap: (name: string, returns: null, args: Array<string>) => XnnBatchMatMul }
  const xnn = module.cwrap("BatchMatMul", null, ["number", "array", "number", "number", "array", "number", "number", "number", "number"])
  const product = (aOffset: number, rows: number, bOffset: number, outOffset: number) => {
    const views = [view(wasm, left, aOffset, rows, k), view(wasm, right, bOffset, k, n), view(wasm, out, outOffset, rows, n)] as const
    const [va, vb, vo] = views
    const heapId = (v: TensorInfo) => wasm.dataIdMap.get(v.dataId)!.id
    xnn(heapId(va), shapeBytes([1, rows, k]), 3, heapId(vb), shapeBytes([1, k, n]), 3, 0, 0, heapId(vo))
    views.forEach((v) => releaseView(wasm, v))
  }
  if (bStep === 0 && aStep !== 0) {
    // One right-hand matrix (a Linear layer): the batch's rows stack into one product.
    product(0, batches * m, 0, 0)
  } else {
    for (let g = 0; g < batches; g++) product(g * aStep, m, g * bStep, g * m * n)
  }
  if (left !== a) release(wasm, left)
  if (right !== b) release(wasm, right)
  return out
}

export const batchMatMulConfig: KernelConfig = {
  kernelName: BatchMatMul,
  backendName: "wasm",
  kernelFunc: batchMatMul
}
