/*
 * A small seeded PRNG and the distributions the datasets need. Every draw in sardine's data code
 * comes from here (never Math.random), so a seed fixes every number: same seed ⇒ same bytes.
 * Generator: sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, 128-bit state, passes
 * PractRand); seeding: splitmix32 over the seed words, so nearby seeds give unrelated streams.
 */

const splitmix32 = (state: number): [number, number] => {
  const next = (state + 0x9e3779b9) | 0
  let z = next
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return [next, (z ^ (z >>> 16)) >>> 0]
}

/** Mixes any number of 32-bit words (seed, scene index, a name's hash…) into one 32-bit key. */
export const mixSeed = (...words: ReadonlyArray<number>): number => {
  let state = 0x6a09e667
  let out = 0
  for (const word of words) {
    ;[state, out] = splitmix32((state ^ Math.imul(word >>> 0, 0x27d4eb2d)) | 0)
  }
  return out
}

/** FNV-1a of a string: a stable 32-bit key for file names. */
export const hashString = (text: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h >>> 0
}

export class SeededRandom {
  private a: number
  private b: number
  private c: number
  private d: number
  /** A second normal from the polar method, kept for the next call. */
  private spareNormal: number | undefined = undefined

  constructor(...seed: ReadonlyArray<number>) {
    let state = mixSeed(...seed)
    const nextWord = (): number => {
      let word: number
      ;[state, word] = splitmix32(state)
      return word
    }
    this.a = nextWord()
    this.b = nextWord()
    this.c = nextWord()
    this.d = nextWord()
    // Discard the first outputs: sfc32 mixes its state in during the first few rounds.
    for (let i = 0; i < 12; i++) this.nextUint32()
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  uniform(): number {
    return this.nextUint32() / 4294967296
  }

  /** Uniform in (0, 1]: safe under a logarithm. */
  uniformPositive(): number {
    return (this.nextUint32() + 1) / 4294967296
  }

  between(low: number, high: number): number {
    return low + (high - low) * this.uniform()
  }

  /** Integer in [low, high], both included. */
  integer(low: number, high: number): number {
    return low + Math.floor(this.uniform() * (high - low + 1))
  }

  chance(p: number): boolean {
    return this.uniform() < p
  }

  pick<T>(items: ReadonlyArray<T>): T {
    if (items.length === 0) throw new Error("pick from an empty list")
    return items[Math.floor(this.uniform() * items.length)]!
  }

  /** Picks an index with probability proportional to its weight. */
  weighted(weights: ReadonlyArray<number>): number {
    const total = weights.reduce((s, w) => s + w, 0)
    let r = this.uniform() * total
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i]!
      if (r < 0) return i
    }
    return weights.length - 1
  }

  /** Standard normal (Marsaglia's polar method). */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const spare = this.spareNormal
      this.spareNormal = undefined
      return spare
    }
    for (;;) {
      const u = 2 * this.uniform() - 1
      const v = 2 * this.uniform() - 1
      const s = u * u + v * v
      if (s > 0 && s < 1) {
        const f = Math.sqrt((-2 * Math.log(s)) / s)
        this.spareNormal = v * f
        return u * f
      }
    }
  }

  /** Exponential with mean 1. */
  exponential(): number {
    return -Math.log(this.uniformPositive())
  }

  /** Gamma(shape, scale 1), Marsaglia & Tsang (2000); shape < 1 through the boost U^(1/shape). */
  gamma(shape: number): number {
    if (shape === 1) return this.exponential()
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(this.uniformPositive(), 1 / shape)
    const d = shape - 1 / 3
    const c = 1 / Math.sqrt(9 * d)
    for (;;) {
      let x: number
      let v: number
      do {
        x = this.normal()
        v = 1 + c * x
      } while (v <= 0)
      v = v * v * v
      const u = this.uniformPositive()
      if (u < 1 - 0.0331 * x * x * x * x) return d * v
      if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v
    }
  }
}
