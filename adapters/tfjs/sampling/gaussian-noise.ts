import * as tf from "@tensorflow/tfjs-core"

/**
 * sardine's seeded Gaussian generator. The numbers are made in JavaScript on the host, not by a tfjs
 * kernel, so a seed gives the same noise on every backend (tfjs' own `randomNormal` differs between
 * cpu and wasm). The algorithm is small and fully specified so other code (tools/make_sampler_goldens.py)
 * can reproduce the stream:
 *   - state: xoshiro128** (Blackman & Vigna), its four 32-bit words taken from two SplitMix64 outputs
 *     seeded with seed · 2³² + stream (first output: words 0 = high, 1 = low; second: 2 = high, 3 = low);
 *   - a uniform u in [0, 1): (next() >>> 5) · 2²⁶ + (next() >>> 6), divided by 2⁵³;
 *   - two normals per pair (u₁, u₂) by Box–Muller: √(−2 ln(1 − u₁)) · cos(2π u₂), then · sin(2π u₂);
 *   - each rounded to float32.
 */

export interface GaussianStream {
  /** The next `count` standard normal values. */
  readonly next: (count: number) => Float32Array
}

const MASK64 = (1n << 64n) - 1n

/** SplitMix64 outputs from a 64-bit seed (used only to spread the seed over xoshiro's state). */
const splitMix64 = (seed: bigint, count: number): Array<bigint> => {
  let x = seed
  return Array.from({ length: count }, () => {
    x = (x + 0x9e3779b97f4a7c15n) & MASK64
    let z = x
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64
    return z ^ (z >> 31n)
  })
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0

/** Independent streams per (seed, stream): a sample's noise depends on its seed and replicate only. */
export const gaussianStream = (seed: number, stream: number): GaussianStream => {
  for (const [name, value] of [["seed", seed], ["stream", stream]] as const) {
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** 32) throw new Error(`${name} ${value} must be an integer in [0, 2^32)`)
  }
  const words = splitMix64((BigInt(seed) << 32n) | BigInt(stream), 2).flatMap((w) => [Number(w >> 32n), Number(w & 0xffffffffn)])
  // Two 64-bit words: four 32-bit halves.
  let [s0, s1, s2, s3] = words as [number, number, number, number]
  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0
    const t = (s1 << 9) >>> 0
    s2 = (s2 ^ s0) >>> 0
    s3 = (s3 ^ s1) >>> 0
    s1 = (s1 ^ s2) >>> 0
    s0 = (s0 ^ s3) >>> 0
    s2 = (s2 ^ t) >>> 0
    s3 = rotl(s3, 11)
    return result
  }
  const uniform = () => ((nextUint32() >>> 5) * 67108864 + (nextUint32() >>> 6)) / 9007199254740992
  // Box–Muller yields normals in pairs; an odd request keeps the second for the next call.
  let spare: number | undefined
  return {
    next: (count) => {
      const out = new Float32Array(count)
      for (let i = 0; i < count; i++) {
        if (spare !== undefined) {
          out[i] = spare
          spare = undefined
          continue
        }
        const radius = Math.sqrt(-2 * Math.log(1 - uniform()))
        const angle = 2 * Math.PI * uniform()
        out[i] = radius * Math.cos(angle)
        spare = Math.fround(radius * Math.sin(angle))
      }
      return out
    }
  }
}

/**
 * A tensor of the next normals, NHWC [B, H, W, C], filled in torch's NCHW order: the same stream gives
 * the same latents as torch code that reads the values as [B, C, H, W].
 */
export const drawNoise = (stream: GaussianStream, shape: readonly [number, number, number, number]): tf.Tensor4D => {
  const [batch, height, width, channels] = shape
  const values = stream.next(batch * height * width * channels)
  return tf.tidy(() => tf.transpose(tf.tensor4d(values, [batch, channels, height, width]), [0, 2, 3, 1]))
}
