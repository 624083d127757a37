import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { drawNoise, gaussianStream } from "../../adapters/tfjs/sampling/gaussian-noise.ts"
import { get, readReference } from "../models/reference.ts"

const FIXTURES = "test/fixtures/sampling"

interface Goldens {
  readonly noiseStreams: ReadonlyArray<{ readonly seed: number; readonly stream: number; readonly tensor: string }>
}
const goldens = JSON.parse(readFileSync(`${FIXTURES}/goldens.json`, "utf8")) as Goldens

describe("sardine's seeded Gaussian stream", () => {
  it("reproduces the stream tools/make_sampler_goldens.py computes from the written specification", async () => {
    const reference = await readReference(`${FIXTURES}/goldens.safetensors`)
    for (const { seed, stream, tensor } of goldens.noiseStreams) {
      const expected = get(reference, tensor).data
      // Bit for bit: both sides round the same float64 Box–Muller values to float32.
      expect(gaussianStream(seed, stream).next(expected.length), `seed ${seed}, stream ${stream}`).toEqual(expected)
    }
  })

  it("gives the same values however the draws are split (an odd draw keeps its Box–Muller partner)", () => {
    const whole = gaussianStream(42, 3).next(1001)
    const pieces = gaussianStream(42, 3)
    const split = [...pieces.next(3), ...pieces.next(1), ...pieces.next(997)]
    expect(split).toEqual(Array.from(whole))
  })

  it("separates seeds and streams", () => {
    const first = (seed: number, stream: number) => Array.from(gaussianStream(seed, stream).next(8))
    expect(first(7, 0)).toEqual(first(7, 0))
    expect(first(7, 0)).not.toEqual(first(8, 0))
    expect(first(7, 0)).not.toEqual(first(7, 1))
  })

  it("is standard normal: moments and the mass within one and two standard deviations", () => {
    const n = 200_000
    const values = gaussianStream(123, 0).next(n)
    let sum = 0
    let squares = 0
    let within1 = 0
    let within2 = 0
    for (const v of values) {
      sum += v
      squares += v * v
      if (Math.abs(v) < 1) within1++
      if (Math.abs(v) < 2) within2++
    }
    const mean = sum / n
    const variance = squares / n - mean * mean
    // Bounds of five standard errors; the masses are erf(1/√2) and erf(√2).
    expect(Math.abs(mean)).toBeLessThan(5 / Math.sqrt(n))
    expect(Math.abs(variance - 1)).toBeLessThan(5 * Math.sqrt(2 / n))
    expect(Math.abs(within1 / n - 0.6826894921370859)).toBeLessThan(5 * Math.sqrt(0.6827 * 0.3173 / n))
    expect(Math.abs(within2 / n - 0.9544997361036416)).toBeLessThan(5 * Math.sqrt(0.9545 * 0.0455 / n))
  })

  it("rejects seeds outside [0, 2^32)", () => {
    expect(() => gaussianStream(-1, 0)).toThrow(/seed -1/)
    expect(() => gaussianStream(0, 2 ** 32)).toThrow(/stream 4294967296/)
    expect(() => gaussianStream(1.5, 0)).toThrow(/seed 1.5/)
  })

  it.each(["cpu", "wasm"])("fills NHWC tensors in torch's NCHW order, identically on the %s backend", async (backend) => {
    await Effect.runPromise(selectBackend(backend))
    const values = gaussianStream(9, 0).next(2 * 3 * 4 * 5)
    const tensor = drawNoise(gaussianStream(9, 0), [2, 4, 5, 3])
    const nhwc = tensor.arraySync() as Array<Array<Array<Array<number>>>>
    tensor.dispose()
    // Element [b, c, h, w] of the NCHW fill is element [b, h, w, c] of the tensor.
    for (let b = 0; b < 2; b++) {
      for (let c = 0; c < 3; c++) {
        for (let h = 0; h < 4; h++) {
          for (let w = 0; w < 5; w++) expect(nhwc[b]![h]![w]![c]).toBe(values[((b * 3 + c) * 4 + h) * 5 + w])
        }
      }
    }
    expect(tf.memory().numTensors).toBe(0)
  })
})
