import type { ParameterSpec } from "./layers.ts"

/**
 * torch <-> tfjs weight layouts, on plain arrays so a checkpoint is converted while it streams in,
 * without a second copy on the backend. Linear: torch [out, in] <-> tfjs [in, out].
 * Conv2d: torch [out, in, kh, kw] (OIHW) <-> tfjs [kh, kw, in, out] (HWIO).
 */

export const tfjsShape = (spec: ParameterSpec): Array<number> => {
  const s = spec.shape
  switch (spec.layout) {
    case "linear":
      return [s[1], s[0]]
    case "conv":
      return [s[2], s[3], s[1], s[0]]
    case "as-is":
      return s.slice()
  }
}

/** Torch-layout values of `spec` rearranged for tfjs. */
export const toTfjsLayout = (spec: ParameterSpec, torch: Float32Array): Float32Array => {
  switch (spec.layout) {
    case "as-is":
      return torch
    case "linear": {
      const [rows, cols] = spec.shape
      const out = new Float32Array(torch.length)
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) out[c * rows + r] = torch[r * cols + c]
      }
      return out
    }
    case "conv": {
      const [o, i, kh, kw] = spec.shape
      const out = new Float32Array(torch.length)
      let src = 0
      for (let a = 0; a < o; a++) {
        for (let b = 0; b < i; b++) {
          for (let y = 0; y < kh; y++) {
            for (let x = 0; x < kw; x++) out[((y * kw + x) * i + b) * o + a] = torch[src++]
          }
        }
      }
      return out
    }
  }
}

/** tfjs-layout values of `spec` rearranged back to torch layout (for writing checkpoints). */
export const toTorchLayout = (spec: ParameterSpec, tfjs: Float32Array): Float32Array => {
  switch (spec.layout) {
    case "as-is":
      return tfjs
    case "linear": {
      const [rows, cols] = spec.shape
      const out = new Float32Array(tfjs.length)
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) out[r * cols + c] = tfjs[c * rows + r]
      }
      return out
    }
    case "conv": {
      const [o, i, kh, kw] = spec.shape
      const out = new Float32Array(tfjs.length)
      let dst = 0
      for (let a = 0; a < o; a++) {
        for (let b = 0; b < i; b++) {
          for (let y = 0; y < kh; y++) {
            for (let x = 0; x < kw; x++) out[dst++] = tfjs[((y * kw + x) * i + b) * o + a]
          }
        }
      }
      return out
    }
  }
}
