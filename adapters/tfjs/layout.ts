import * as tf from "@tensorflow/tfjs-core"
import type { ParameterSpec } from "./layers.ts"

/**
 * torch <-> tfjs weight layouts, on plain arrays so a checkpoint is converted while it streams in,
 * without a second copy on the backend. Linear: torch [out, in] <-> tfjs [in, out].
 * Conv2d: torch [out, in, kh, kw] (OIHW) <-> tfjs [kh, kw, in, out] (HWIO).
 */

export const tfjsShape = (spec: ParameterSpec): Array<number> => {
  switch (spec.layout) {
    case "linear":
      return [spec.shape[1], spec.shape[0]]
    case "conv":
      return [spec.shape[2], spec.shape[3], spec.shape[1], spec.shape[0]]
    case "as-is":
      return spec.shape.slice()
  }
}

/** Tile edge of the blocked transpose: a tile of each side stays in cache while it is copied. */
const TILE = 32

/** [rows, cols] -> [cols, rows], tile by tile (several times faster than the naive loop on large matrices). */
const transpose2d = (source: Float32Array, rows: number, cols: number): Float32Array => {
  const out = new Float32Array(source.length)
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(r0 + TILE, rows)
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(c0 + TILE, cols)
      for (let r = r0; r < r1; r++) {
        const from = r * cols
        for (let c = c0; c < c1; c++) out[c * rows + r] = source[from + c]!
      }
    }
  }
  return out
}

/** Reorders rows of length `width` from (a, b) order to (b, a) order: [A, B, width] -> [B, A, width]. */
const swapRowGroups = (source: Float32Array, a: number, b: number, width: number): Float32Array => {
  const out = new Float32Array(source.length)
  for (let i = 0; i < a; i++) {
    for (let j = 0; j < b; j++) out.set(source.subarray((i * b + j) * width, (i * b + j + 1) * width), (j * a + i) * width)
  }
  return out
}

/** Torch-layout values of `spec` rearranged for tfjs. */
export const toTfjsLayout = (spec: ParameterSpec, torch: Float32Array): Float32Array => {
  switch (spec.layout) {
    case "as-is":
      return torch
    case "linear":
      return transpose2d(torch, spec.shape[0], spec.shape[1])
    case "conv": {
      // [O, I, K] -> [I, K, O] (one transpose), then [I, K] rows -> [K, I] rows; K = kh·kw.
      const [o, i, kh, kw] = spec.shape
      const k = kh * kw
      const transposed = transpose2d(torch, o, i * k)
      return k === 1 ? transposed : swapRowGroups(transposed, i, k, o)
    }
  }
}

/** tfjs-layout values of `spec` rearranged back to torch layout (for writing checkpoints). */
export const toTorchLayout = (spec: ParameterSpec, tfjs: Float32Array): Float32Array => {
  switch (spec.layout) {
    case "as-is":
      return tfjs
    case "linear":
      return transpose2d(tfjs, spec.shape[1], spec.shape[0])
    case "conv": {
      const [o, i, kh, kw] = spec.shape
      const k = kh * kw
      return transpose2d(k === 1 ? tfjs : swapRowGroups(tfjs, k, i, o), i * k, o)
    }
  }
}

/** Axis order taking a torch-layout tensor to tfjs layout. */
const TO_TFJS: Record<"linear" | "conv", Array<number>> = { linear: [1, 0], conv: [2, 3, 1, 0] }

/**
 * A tfjs tensor from torch-layout values. The wasm and native backends transpose faster than JS
 * does, so they rearrange on the backend; the cpu backend's generic transpose is slower than
 * `toTfjsLayout`, so there the values are rearranged before the tensor is made.
 */
export const tfjsTensor = (spec: ParameterSpec, torch: Float32Array): tf.Tensor => {
  if (spec.layout === "as-is") return tf.tensor(torch, spec.shape.slice(), "float32")
  if (tf.getBackend() === "cpu") return tf.tensor(toTfjsLayout(spec, torch), tfjsShape(spec), "float32")
  const layout = spec.layout
  return tf.tidy(() => tf.transpose(tf.tensor(torch, spec.shape.slice(), "float32"), TO_TFJS[layout]))
}
