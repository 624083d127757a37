import { SeededRandom } from "../../data/seeded-random.ts"

/**
 * Every random number of a training run comes from a generator keyed by (declared seed, what it is
 * for, optimiser step, micro-batch, …). Nothing carries over from one draw to the next, so the
 * whole random state of a run is its step counter: a resumed run draws exactly what an
 * uninterrupted one would.
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
  vaeSample: 9
} as const
export type DrawPurpose = (typeof DrawPurpose)[keyof typeof DrawPurpose]

export const drawsFor = (seed: number, purpose: DrawPurpose, ...key: ReadonlyArray<number>): SeededRandom =>
  new SeededRandom(seed, purpose, ...key)

/** `count` standard normal values. */
export const normals = (random: SeededRandom, count: number): Float32Array => {
  const out = new Float32Array(count)
  for (let i = 0; i < count; i++) out[i] = random.normal()
  return out
}

/** A uniformly shuffled 0…n−1 (Fisher–Yates). */
export const permutation = (random: SeededRandom, n: number): Int32Array => {
  const out = Int32Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random.uniform() * (i + 1))
    const t = out[i]
    out[i] = out[j]
    out[j] = t
  }
  return out
}
