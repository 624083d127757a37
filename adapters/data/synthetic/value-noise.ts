import type { SeededRandom } from "../seeded-random.ts"

/**
 * Smooth random field in [0, 1] on a size × size grid: random values on a coarse lattice of
 * `cell` pixels, smoothly interpolated. Used for canopy heights, field moisture and optical tones.
 */
export const valueNoise = (rng: SeededRandom, size: number, cell: number): Float32Array => {
  const n = Math.ceil(size / cell) + 2
  const lattice = new Float32Array(n * n)
  for (let i = 0; i < lattice.length; i++) lattice[i] = rng.uniform()
  const out = new Float32Array(size * size)
  const fade = (t: number) => t * t * (3 - 2 * t)
  for (let y = 0; y < size; y++) {
    const gy = y / cell
    const y0 = Math.floor(gy)
    const ty = fade(gy - y0)
    for (let x = 0; x < size; x++) {
      const gx = x / cell
      const x0 = Math.floor(gx)
      const tx = fade(gx - x0)
      const a = lattice[y0 * n + x0]!
      const b = lattice[y0 * n + x0 + 1]!
      const c = lattice[(y0 + 1) * n + x0]!
      const d = lattice[(y0 + 1) * n + x0 + 1]!
      out[y * size + x] = (a + (b - a) * tx) * (1 - ty) + (c + (d - c) * tx) * ty
    }
  }
  return out
}
