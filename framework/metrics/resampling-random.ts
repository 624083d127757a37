/**
 * The random draws of bootstrap resamples and permutations. Seeded from the declaration's
 * `evaluate.uncertainty.seed` plus words naming what is resampled (an evaluation, a comparison),
 * so the same declaration gives the same intervals and p-values on every run and machine.
 * Generator: xoshiro128** (Blackman & Vigna), seeded through murmur3's 32-bit finaliser.
 */

const finalise = (h: number): number => {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

/** A stable 32-bit word for a name (FNV-1a, finalised). */
export const wordOf = (text: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return finalise(h)
}

const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k))

export class ResamplingRandom {
  private readonly s = new Uint32Array(4)

  constructor(...words: ReadonlyArray<number>) {
    let h = 0x3c6ef372
    for (let i = 0; i < 4; i++) {
      for (const word of words) h = finalise(h ^ Math.imul(word >>> 0, 0x9e3779b1) ^ i)
      this.s[i] = h === 0 ? 0x9e3779b9 : h
      h = finalise(h + 0x7f4a7c15)
    }
  }

  nextUint32(): number {
    const s = this.s
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0
    const t = s[1]! << 9
    s[2]! ^= s[0]!
    s[3]! ^= s[1]!
    s[1]! ^= s[2]!
    s[0]! ^= s[3]!
    s[2]! ^= t
    s[3] = rotl(s[3]!, 11)
    return result
  }

  /** An integer in [0, n), n ≤ 2³², without modulo bias (rejection of the short last block). */
  below(n: number): number {
    const limit = 2 ** 32 - (2 ** 32 % n)
    for (;;) {
      const x = this.nextUint32()
      if (x < limit) return x % n
    }
  }

  /** A fair coin. */
  coin(): boolean {
    return (this.nextUint32() & 0x80000000) !== 0
  }
}
