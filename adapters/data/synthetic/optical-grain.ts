import type { SeededRandom } from "../seeded-random.ts"

/*
 * Pixel-scale grain for optical scenes, so that an autoencoder pretrained on them learns to pass
 * high-frequency texture (real SD VAEs see film grain, foliage, gravel…). Each scene draws its own
 * strength s uniformly in [0, maxStrength]; every pixel's luminance is multiplied by
 * (1 − s) + s · A, A a unit-mean Rayleigh amplitude (√E / E[√E], E exponential): at s = 1 the
 * scene carries single-look-like multiplicative grain, at s = 0 none. The three channels share the
 * factor, so colours keep their hue. Values stay in 0–255.
 */

/** E[√E] for E exponential with mean 1: √π / 2. */
const meanRayleigh = Math.sqrt(Math.PI) / 2

/** `rgb` (interleaved, 0–255) with grain of a strength drawn from `rng`; `rgb` is left as it is. */
export const addOpticalGrain = (rgb: Float32Array, rng: SeededRandom, maxStrength: number): Float32Array => {
  const strength = rng.between(0, maxStrength)
  const out = new Float32Array(rgb.length)
  for (let p = 0; p < rgb.length; p += 3) {
    const factor = 1 - strength + strength * Math.sqrt(rng.exponential()) / meanRayleigh
    for (let c = 0; c < 3; c++) out[p + c] = Math.min(255, rgb[p + c]! * factor)
  }
  return out
}
