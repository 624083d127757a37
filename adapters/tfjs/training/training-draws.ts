import { mixSeed } from "../../data/seeded-random.ts"

/**
 * Every random number of a training run comes from a stream keyed by (declared seed, what it is for,
 * optimiser step, micro-batch, …). Nothing carries over from one draw to the next, so the whole random
 * state of a run is its step counter: a resumed run draws exactly what an uninterrupted one would.
 *
 * The streams are counter-based, so that value i of a draw is a pure function of (key, i): the torch
 * engine (adapters/torch/worker/sardine_torch/draws.py) computes the same values with vectorised numpy,
 * where a sequential generator would cost ~1 s per SDXL step in Python. The algorithm, exactly:
 *
 *   stream key     k = mixSeed(seed, purpose, …key), s = mixSeed(STREAM_SALT, seed, purpose, …key)
 *                  (mixSeed of adapters/data/seeded-random.ts, 32-bit words)
 *   word 2j, 2j+1  the two outputs of Philox2x32-10 (Salmon et al. 2011, Random123's constants
 *                  M = 0xD256D193, W = 0x9E3779B9) on the counter (j, s) with the key k
 *   uniform        u = (word + 0.5) / 2³², in (0, 1); each uniform takes the next word
 *   normals        Box–Muller on an aligned pair of words (a, b) (an odd position first skips a word):
 *                  r = √(−2 ln uₐ), θ = 2π u_b, normals r·cos θ then r·sin θ, rounded to float32.
 *                  ln, cos and sin are computed below from +, −, ×, ÷ and √ only (series in a fixed
 *                  order), which IEEE 754 rounds the same everywhere, so JavaScript and numpy agree
 *                  bit for bit (libm's and V8's transcendental functions may differ in the last bit).
 *
 * A normal uses the 32-bit resolution of its words: |value| ≤ √(2·33·ln 2) ≈ 6.8.
 */
export const DrawPurpose = {
  dataOrder: 1,
  captionDropout: 2,
  timesteps: 3,
  noise: 4,
  noiseOffset: 5,
  latentSample: 6,
  loraDropout: 7,
  loraInit: 8,
  vaeSample: 9,
  validationSplit: 10,
  validationNoise: 11
} as const
export type DrawPurpose = (typeof DrawPurpose)[keyof typeof DrawPurpose]

/** The first word of the second key, so the two 32-bit keys of a stream are independent hashes. */
export const STREAM_SALT = 0x5851f42d

const PHILOX_M = 0xd256d193
const PHILOX_W = 0x9e3779b9
const M_HIGH = PHILOX_M >>> 16
const M_LOW = PHILOX_M & 0xffff
const TWO_32 = 4294967296

/**
 * Philox2x32-10 of the counter (c0, c1) under `key`: its two output words into out[0], out[1].
 * The 64-bit product M·c0 is assembled from two exact 48-bit float64 products.
 */
export const philox2x32 = (c0: number, c1: number, key: number, out: Uint32Array): void => {
  let x0 = c0 >>> 0
  let x1 = c1 >>> 0
  let k = key >>> 0
  for (let round = 0; round < 10; round++) {
    if (round > 0) k = (k + PHILOX_W) >>> 0
    const low = Math.imul(x0, PHILOX_M) >>> 0
    const byHigh = x0 * M_HIGH
    const byLow = x0 * M_LOW
    const high = (Math.floor(byHigh / 65536) + Math.floor(((byHigh % 65536) * 65536 + byLow) / TWO_32)) >>> 0
    x0 = (high ^ k ^ x1) >>> 0
    x1 = low
  }
  out[0] = x0
  out[1] = x1
}

const LN2 = 0.6931471805599453
const SQRT_HALF = 0.7071067811865476
const HALF_PI = 1.5707963267948966

/** ln((word + 0.5) / 2³²) from the word's bits: 2ᵉ·m with m in [√½, √2), then 2·atanh((m−1)/(m+1)) as a series. */
const logOfUniform = (word: number): number => {
  const x = word + 0.5
  let e = 31 - Math.clz32(word)
  if (word === 0) e = -1
  let m = x / 2 ** e
  if (m >= 2 * SQRT_HALF) {
    m = m / 2
    e = e + 1
  }
  const s = (m - 1) / (m + 1)
  const s2 = s * s
  // Σ s^(2i) / (2i+1) for i = 0…8: |s| ≤ 0.172, so the next term is below 1e-14.
  let series = 1 / 17
  for (let i = 7; i >= 0; i--) series = series * s2 + 1 / (2 * i + 1)
  return 2 * s * series + (e - 32) * LN2
}

/** cos and sin of 2π·(word + 0.5) / 2³²: the top two bits pick the quadrant, Taylor series within it. */
const cosSinOfUniform = (word: number, out: Float64Array): void => {
  const quadrant = word >>> 30
  const angle = (((word & 0x3fffffff) + 0.5) / 1073741824) * HALF_PI
  const a2 = angle * angle
  // Horner over 1 − a²/2! + a⁴/4! − … and a − a³/3! + … to the a²⁰ / a²¹ terms (|a| ≤ π/2: error < 4e-15).
  let c = 1
  let s = 1
  for (let i = 10; i >= 1; i--) {
    c = 1 - (a2 / ((2 * i - 1) * (2 * i))) * c
    s = 1 - (a2 / ((2 * i) * (2 * i + 1))) * s
  }
  s = angle * s
  switch (quadrant) {
    case 0:
      out[0] = c
      out[1] = s
      return
    case 1:
      out[0] = -s
      out[1] = c
      return
    case 2:
      out[0] = -c
      out[1] = -s
      return
    default:
      out[0] = s
      out[1] = -c
  }
}

/** One keyed stream of words, read from its start; `position` counts the words taken. */
export class TrainingDraws {
  private readonly key: number
  private readonly salt: number
  private position = 0
  private readonly block = new Uint32Array(2)
  private readonly trig = new Float64Array(2)

  constructor(seed: number, purpose: DrawPurpose, key: ReadonlyArray<number>) {
    this.key = mixSeed(seed, purpose, ...key)
    this.salt = mixSeed(STREAM_SALT, seed, purpose, ...key)
  }

  private word(index: number): number {
    philox2x32(Math.floor(index / 2), this.salt, this.key, this.block)
    return this.block[index % 2]!
  }

  /** Uniform in (0, 1). */
  uniform(): number {
    return (this.word(this.position++) + 0.5) / TWO_32
  }

  /** Integer in [low, high], both included. */
  integer(low: number, high: number): number {
    return low + Math.floor(this.uniform() * (high - low + 1))
  }

  chance(p: number): boolean {
    return this.uniform() < p
  }

  /** `count` standard normal values (Box–Muller pairs from the next aligned pair of words). */
  normals(count: number): Float32Array {
    if (this.position % 2 === 1) this.position++
    const out = new Float32Array(count)
    for (let i = 0; i < count; i += 2) {
      philox2x32(this.position / 2, this.salt, this.key, this.block)
      this.position += 2
      const radius = Math.sqrt(-2 * logOfUniform(this.block[0]!))
      cosSinOfUniform(this.block[1]!, this.trig)
      out[i] = radius * this.trig[0]!
      if (i + 1 < count) out[i + 1] = radius * this.trig[1]!
    }
    return out
  }
}

export const drawsFor = (seed: number, purpose: DrawPurpose, ...key: ReadonlyArray<number>): TrainingDraws => new TrainingDraws(seed, purpose, key)

/** `count` standard normal values. */
export const normals = (random: TrainingDraws, count: number): Float32Array => random.normals(count)

/** A uniformly shuffled 0…n−1 (Fisher–Yates from the last position down, one uniform per swap). */
export const permutation = (random: TrainingDraws, n: number): Int32Array => {
  const out = Int32Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random.uniform() * (i + 1))
    const t = out[i]!
    out[i] = out[j]!
    out[j] = t
  }
  return out
}
