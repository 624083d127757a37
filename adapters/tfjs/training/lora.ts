import * as tf from "@tensorflow/tfjs-core"
import { hashString, mixSeed } from "../../data/seeded-random.ts"
import type { AdaptableModule } from "../../../framework/declaration/partition.ts"
import type { Layers, ParameterSpec } from "../layers.ts"
import { tfjsShape } from "../layout.ts"
import { drawsFor, DrawPurpose, normals } from "./training-draws.ts"

/**
 * Low-rank adapters (Hu et al. 2021) as PEFT builds them: for a Linear or Conv2d module W,
 * y = W(x) + (alpha / rank) · B(A(dropout(x))), with A a projection to `rank` channels (for a
 * convolution: a convolution with W's kernel, stride and padding) and B a 1×1 map back, B zero at
 * the start so the adapted model starts exactly as the base. Base weights are never touched.
 */

/** A's and B's tensors, tfjs layout: Linear A [in, r], B [r, out]; Conv A [kh, kw, in, r], B [1, 1, r, out]. */
export interface LoraWeights {
  readonly down: tf.Tensor
  readonly up: tf.Tensor
}

/** A's and B's specs in torch layout (as PEFT and kohya files hold them): A [r, in(, kh, kw)], B [out, r(, 1, 1)]. */
export const loraSpecs = (m: AdaptableModule, rank: number): { readonly down: ParameterSpec; readonly up: ParameterSpec } =>
  m.kind === "linear"
    ? {
      down: { name: `${m.module}.lora_A.weight`, shape: [rank, m.inFeatures], layout: "linear" },
      up: { name: `${m.module}.lora_B.weight`, shape: [m.outFeatures, rank], layout: "linear" }
    }
    : {
      down: { name: `${m.module}.lora_A.weight`, shape: [rank, m.inFeatures, m.kernel[0], m.kernel[1]], layout: "conv" },
      up: { name: `${m.module}.lora_B.weight`, shape: [m.outFeatures, rank, 1, 1], layout: "conv" }
    }

export const downShape = (m: AdaptableModule, rank: number): Array<number> => tfjsShape(loraSpecs(m, rank).down)

export const upShape = (m: AdaptableModule, rank: number): Array<number> => tfjsShape(loraSpecs(m, rank).up)

/**
 * Fresh weights: A ~ N(0, 1/rank²) as PEFT's `init_lora_weights="gaussian"`, each module's draws keyed
 * by (seed, module name); B = 0.
 */
export const initialLoraWeights = (m: AdaptableModule, rank: number, seed: number): { down: Float32Array; up: Float32Array } => {
  const size = (shape: ReadonlyArray<number>) => shape.reduce((a, b) => a * b, 1)
  const down = normals(drawsFor(seed, DrawPurpose.loraInit, hashString(m.module)), size(downShape(m, rank))).map((v) => v / rank)
  return { down, up: new Float32Array(size(upShape(m, rank))) }
}

/** x · W over the last axis, any rank. */
const project = (x: tf.Tensor, w: tf.Tensor): tf.Tensor => {
  const inner = x.shape[x.rank - 1]!
  const flat = x.rank === 2 ? x as tf.Tensor2D : tf.reshape(x, [-1, inner]) as tf.Tensor2D
  const y = tf.matMul(flat, w as tf.Tensor2D)
  return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), w.shape[1] as number])
}

export interface LoraDropout {
  readonly rate: number
  /** Keys this forward pass's masks: each module's n-th call draws from (seed, module, n). */
  readonly seed: number
}

/**
 * Layers that add the adapters of `adapters` (by module name) to `base`'s modules, scaled by
 * `scale` = alpha / rank. With `dropout`, each adapter's input is dropped out (inverted dropout).
 * Unadapted modules compute exactly what `base` does.
 */
export const loraLayers = (
  base: Layers,
  adapters: ReadonlyMap<string, LoraWeights>,
  scale: number,
  dropout?: LoraDropout
): Layers => {
  const calls = new Map<string, number>()
  const input = (module: string, x: tf.Tensor): tf.Tensor => {
    if (dropout === undefined || dropout.rate === 0) return x
    const n = calls.get(module) ?? 0
    calls.set(module, n + 1)
    return tf.dropout(x, dropout.rate, undefined, mixSeed(dropout.seed, hashString(module), n))
  }
  return {
    parameter: base.parameter,
    has: base.has,
    linear: (module, x) => {
      const y = base.linear(module, x)
      const adapter = adapters.get(module)
      if (adapter === undefined) return y
      return tf.add(y, project(project(input(module, x), adapter.down), tf.mul(adapter.up, scale)))
    },
    conv2d: (module, x, options) => {
      const y = base.conv2d(module, x, options)
      const adapter = adapters.get(module)
      if (adapter === undefined) return y
      const [top, bottom, left, right] = typeof options.padding === "number"
        ? [options.padding, options.padding, options.padding, options.padding]
        : options.padding
      const pad = top + bottom + left + right === 0
        ? "valid" as const
        : [[0, 0], [top, bottom], [left, right], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]]
      const stride = options.stride ?? 1
      const low = tf.conv2d(input(module, x) as tf.Tensor4D, adapter.down as tf.Tensor4D, stride, pad)
      return tf.add(y, tf.conv2d(low, tf.mul(adapter.up, scale) as tf.Tensor4D, 1, "valid"))
    }
  }
}

/**
 * W + scale · (A then B) as one weight of W's tfjs layout: the adapter merged into the module
 * (Linear: A·B; Conv: every kernel tap of A followed by the 1×1 B).
 */
export const mergedWeight = (weight: tf.Tensor, adapter: LoraWeights, scale: number): tf.Tensor =>
  tf.tidy(() => {
    const rank = adapter.down.shape[adapter.down.rank - 1]!
    const down = tf.reshape(adapter.down, [-1, rank]) as tf.Tensor2D
    const up = tf.reshape(adapter.up, [rank, -1]) as tf.Tensor2D
    return tf.add(weight, tf.reshape(tf.mul(tf.matMul(down, up), scale), weight.shape))
  })
