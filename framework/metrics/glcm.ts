import { Effect } from "effect"
import { MetricInputError } from "./metric-input.ts"

/**
 * Gray-level co-occurrence matrices and their properties, as scikit-image 0.26's
 * `graycomatrix` / `graycoprops` compute them (DESIGN §7).
 */

/** An image of grey levels in [0, levels), row-major, with an optional mask (1 = counts, 0 = not). */
export interface LevelImage {
  readonly name: string
  readonly width: number
  readonly height: number
  readonly data: Uint8Array | Uint16Array | Uint32Array | Int32Array
  readonly mask?: Uint8Array
}

export interface GlcmOptions {
  readonly distances: ReadonlyArray<number>
  /** Radians. */
  readonly angles: ReadonlyArray<number>
  readonly levels: number
  readonly symmetric: boolean
  readonly normed: boolean
}

/** One levels × levels matrix per (distance, angle), laid out [distance][angle][i][j]. */
export interface Glcm {
  readonly levels: number
  readonly distanceCount: number
  readonly angleCount: number
  readonly data: Float64Array
}

/** Property names as scikit-image spells them. */
export const GLCM_PROPERTIES = [
  "contrast",
  "dissimilarity",
  "homogeneity",
  "ASM",
  "energy",
  "correlation",
  "mean",
  "variance",
  "std",
  "entropy"
] as const
export type GlcmProperty = (typeof GLCM_PROPERTIES)[number]

/** Per property, values shaped [distance][angle] like `graycoprops`. */
export type GlcmProperties = { readonly [K in GlcmProperty]: number[][] }

/** scikit-image's Cython `round`: half away from zero, then truncation. */
const roundAwayFromZero = (x: number) => Math.trunc(x > 0 ? x + 0.5 : x - 0.5)

/** Row and column offset of the neighbour for one (distance, angle), as in `_glcm_loop`. */
export const glcmOffset = (distance: number, angle: number) => ({
  row: roundAwayFromZero(Math.sin(angle) * distance),
  col: roundAwayFromZero(Math.cos(angle) * distance)
})

const checkLevelImage = (image: LevelImage, options: GlcmOptions): Effect.Effect<void, MetricInputError> => {
  const fail = (reason: string) => Effect.fail(new MetricInputError({ input: image.name, reason }))
  const { width, height, data, mask } = image
  const { levels, distances, angles } = options
  if (!(Number.isInteger(levels) && levels >= 1 && levels <= 65536)) return fail(`levels must be an integer in [1, 65536], got ${levels}`)
  if (distances.length === 0 || angles.length === 0) return fail("at least one distance and one angle are needed")
  for (const d of distances) if (!Number.isFinite(d)) return fail(`distance ${d} is not a finite number`)
  for (const a of angles) if (!Number.isFinite(a)) return fail(`angle ${a} is not a finite number`)
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    return fail(`width and height must be positive integers, got ${width} × ${height}`)
  }
  if (data.length !== width * height) return fail(`has ${data.length} values, but ${width} × ${height} were expected`)
  if (mask !== undefined && mask.length !== data.length) {
    return fail(`mask has ${mask.length} entries, but the image has ${data.length} pixels`)
  }
  let selected = 0
  for (let p = 0; p < data.length; p++) {
    if (mask !== undefined) {
      if (mask[p]! > 1) return fail(`mask value ${mask[p]} at row ${Math.floor(p / width)}, column ${p % width} is neither 0 nor 1`)
      if (mask[p] === 0) continue
    }
    selected++
    if (data[p]! < 0 || data[p]! >= levels) {
      return fail(`grey level ${data[p]} at row ${Math.floor(p / width)}, column ${p % width} is outside [0, ${levels - 1}]`)
    }
  }
  if (selected === 0) return fail("the mask selects no pixel")
  return Effect.void
}

/**
 * Partial count tables per offset; consecutive pixels count into different ones (see below).
 * Above 256 levels the tables would be large, and one is used.
 */
const lanesFor = (levels: number) => (levels <= 256 ? 4 : 1)

/**
 * `graycomatrix` for level images sardine built itself (values known to lie in [0, levels),
 * mask of 0/1 selecting at least one pixel): no validation pass.
 *
 * Speed, which the texture chain's benchmark holds against scikit-image: rows are visited once,
 * each counting for every (distance, angle), so the image is read from cache rather than once
 * per offset; and pixels p, p + 1, p + 2, p + 3 count into separate tables, summed at the
 * end, because neighbouring pixels often form the same pair and increments of one cell in a row
 * would wait on each other.
 */
export const graycomatrixOfTrustedLevels = (image: LevelImage, options: GlcmOptions): Glcm => {
  const { levels, distances, angles, symmetric, normed } = options
  const { width, height, data, mask } = image
  const size = levels * levels
  const offsetCount = distances.length * angles.length
  const rowOffset = new Int32Array(offsetCount)
  const colOffset = new Int32Array(offsetCount)
  distances.forEach((distance, d) =>
    angles.forEach((angle, a) => {
      const { row, col } = glcmOffset(distance, angle)
      rowOffset[d * angles.length + a] = row
      colOffset[d * angles.length + a] = col
    })
  )
  const lanes = lanesFor(levels)
  const laneStride = lanes > 1 ? size : 0
  const tables = new Int32Array(offsetCount * lanes * size)
  for (let r = 0; r < height; r++) {
    for (let k = 0; k < offsetCount; k++) {
      const row = rowOffset[k]!
      const col = colOffset[k]!
      if (r + row < 0 || r + row >= height) continue
      const shift = row * width + col
      const t0 = k * lanes * size
      const t1 = t0 + laneStride
      const t2 = t1 + laneStride
      const t3 = t2 + laneStride
      let p = r * width + Math.max(0, -col)
      const end = r * width + Math.min(width, width - col)
      if (mask === undefined) {
        for (; p + 3 < end; p += 4) {
          tables[t0 + data[p]! * levels + data[p + shift]!]!++
          tables[t1 + data[p + 1]! * levels + data[p + 1 + shift]!]!++
          tables[t2 + data[p + 2]! * levels + data[p + 2 + shift]!]!++
          tables[t3 + data[p + 3]! * levels + data[p + 3 + shift]!]!++
        }
        for (; p < end; p++) tables[t0 + data[p]! * levels + data[p + shift]!]!++
      } else {
        for (; p < end; p++) {
          if (mask[p] !== 0 && mask[p + shift] !== 0) tables[t0 + data[p]! * levels + data[p + shift]!]!++
        }
      }
    }
  }
  const out = new Float64Array(offsetCount * size)
  const counts = new Int32Array(size)
  for (let k = 0; k < offsetCount; k++) {
    counts.fill(0)
    for (let lane = 0; lane < lanes; lane++) {
      const t = (k * lanes + lane) * size
      for (let c = 0; c < size; c++) counts[c]! += tables[t + c]!
    }
    const base = k * size
    let total = 0
    for (let i = 0; i < levels; i++) {
      for (let j = 0; j < levels; j++) {
        const value = symmetric ? counts[i * levels + j]! + counts[j * levels + i]! : counts[i * levels + j]!
        out[base + i * levels + j] = value
        total += value
      }
    }
    if (normed && total > 0) { for (let c = base; c < base + size; c++) out[c]! /= total }
  }
  return { levels, distanceCount: distances.length, angleCount: angles.length, data: out }
}

/**
 * `graycomatrix(image, distances, angles, levels, symmetric, normed)`. Pairs with a masked-out
 * pixel are not counted (scikit-image has no mask; this equals its counts with masked pixels set
 * to an extra level that is dropped afterwards).
 */
export const graycomatrix = (image: LevelImage, options: GlcmOptions): Effect.Effect<Glcm, MetricInputError> =>
  Effect.map(checkLevelImage(image, options), () => graycomatrixOfTrustedLevels(image, options))

/** All `graycoprops` properties of one matrix (normalised here, as graycoprops does). */
const matrixProperties = (glcm: Glcm, base: number): Record<GlcmProperty, number> => {
  const { levels, data } = glcm
  const size = levels * levels
  let total = 0
  for (let k = base; k < base + size; k++) total += data[k]!
  if (total === 0) total = 1
  let contrast = 0
  let dissimilarity = 0
  let homogeneity = 0
  let asm = 0
  let entropy = 0
  let meanI = 0
  let meanJ = 0
  for (let i = 0; i < levels; i++) {
    for (let j = 0; j < levels; j++) {
      const p = data[base + i * levels + j]! / total
      if (p === 0) continue
      const diff = i - j
      contrast += p * diff * diff
      dissimilarity += p * Math.abs(diff)
      homogeneity += p / (1 + diff * diff)
      asm += p * p
      entropy -= p * Math.log(p)
      meanI += p * i
      meanJ += p * j
    }
  }
  let varI = 0
  let varJ = 0
  let cov = 0
  for (let i = 0; i < levels; i++) {
    for (let j = 0; j < levels; j++) {
      const p = data[base + i * levels + j]! / total
      if (p === 0) continue
      const di = i - meanI
      const dj = j - meanJ
      varI += p * di * di
      varJ += p * dj * dj
      cov += p * di * dj
    }
  }
  const stdI = Math.sqrt(varI)
  const stdJ = Math.sqrt(varJ)
  return {
    contrast,
    dissimilarity,
    homogeneity,
    ASM: asm,
    energy: Math.sqrt(asm),
    // scikit-image reports 1 when either standard deviation is ~0 (a single grey level).
    correlation: stdI < 1e-15 || stdJ < 1e-15 ? 1 : cov / (stdI * stdJ),
    mean: meanI,
    variance: varI,
    std: stdI,
    entropy
  }
}

/** `graycoprops(P, prop)` for every property, each shaped [distance][angle]. */
export const graycoprops = (glcm: Glcm): GlcmProperties => {
  const out = Object.fromEntries(
    GLCM_PROPERTIES.map((name) => [name, Array.from({ length: glcm.distanceCount }, () => new Array<number>(glcm.angleCount))])
  ) as Record<GlcmProperty, number[][]>
  const size = glcm.levels * glcm.levels
  for (let d = 0; d < glcm.distanceCount; d++) {
    for (let a = 0; a < glcm.angleCount; a++) {
      const values = matrixProperties(glcm, (d * glcm.angleCount + a) * size)
      for (const name of GLCM_PROPERTIES) out[name][d]![a] = values[name]
    }
  }
  return out
}
