import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import { expect } from "vitest"
import { openSafetensors } from "../../adapters/safetensors/safetensors-reader.ts"

/** A tensor the reference (diffusers / transformers) wrote: shape in torch layout, values as float32 or int32. */
export interface ReferenceTensor {
  readonly shape: ReadonlyArray<number>
  readonly data: Float32Array | Int32Array
}

/** Every tensor of a reference file written by tools/make_tiny_pipelines.py. */
export const readReference = (file: string): Promise<Map<string, ReferenceTensor>> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const reader = yield* openSafetensors(file)
    const out = new Map<string, ReferenceTensor>()
    for (const t of reader.header.tensors) {
      const data = t.dtype === "I32" ? yield* reader.readInt32(t.name) : yield* reader.readFloat32(t.name)
      out.set(t.name, { shape: t.shape, data })
    }
    return out
  })))

export const get = (reference: ReadonlyMap<string, ReferenceTensor>, name: string): ReferenceTensor => {
  const t = reference.get(name)
  if (t === undefined) throw new Error(`reference has no tensor "${name}"`)
  return t
}

/** An NCHW reference tensor as an NHWC tfjs tensor. */
export const nhwc = (t: ReferenceTensor): tf.Tensor4D =>
  tf.tidy(() => tf.transpose(tf.tensor4d(t.data as Float32Array, t.shape as [number, number, number, number]), [0, 2, 3, 1]))

/** Rows of token ids from a [B, T] int32 reference tensor. */
export const idRows = (t: ReferenceTensor): Array<Int32Array> =>
  Array.from({ length: t.shape[0]! }, (_, b) => Int32Array.from(t.data.subarray(b * t.shape[1]!, (b + 1) * t.shape[1]!)))

/**
 * The acceptance rule: max |actual − expected| ≤ 1e-4 × max |expected|. `layout` "nhwc" compares an NHWC
 * result with an NCHW reference.
 */
export const expectClose = (actual: tf.Tensor, expected: ReferenceTensor, label: string, layout: "same" | "nhwc" = "same") => {
  const nchw = layout === "nhwc" ? tf.transpose(actual, [0, 3, 1, 2]) : undefined
  const values = (nchw ?? actual).dataSync()
  nchw?.dispose()
  const shape = layout === "nhwc" ? [actual.shape[0], actual.shape[3], actual.shape[1], actual.shape[2]] : actual.shape
  expect(shape, `${label}: shape`).toEqual(expected.shape)
  let scale = 0
  let worst = 0
  for (let i = 0; i < values.length; i++) {
    scale = Math.max(scale, Math.abs(expected.data[i]!))
    worst = Math.max(worst, Math.abs(values[i]! - expected.data[i]!))
  }
  expect(scale, `${label}: reference is all zeros`).toBeGreaterThan(0)
  expect(worst / scale, `${label}: max error ${worst} relative to scale ${scale}`).toBeLessThanOrEqual(1e-4)
}
