import type { SampleImage } from "./metric-input.ts"

/**
 * Layout agreement between a generated SAR image and the true image of its condition's scene: the
 * Pearson correlation of their local mean amplitude (in log, block means over non-overlapping w × w
 * blocks) at each scale w, averaged over the scales.
 *
 * Why local means: two SAR images of the same scene share their backscatter layout (water dark, towns
 * bright) but not their speckle, which is independent from one acquisition — or one generation — to the
 * next; at pixel level speckle dominates (single-look amplitude has CV ≈ 0.52 on any homogeneous area),
 * so pixel correlation is low even for a perfect generator. A w × w mean averages w² speckle samples,
 * leaving the layout. Logs, because SAR contrast is multiplicative (a town is brighter than water by a
 * factor, not an offset). It needs no class list, so it judges label-map, optical and SAR conditions
 * alike, and it falls to about 0 when a generated image is compared with another scene's truth — the
 * shuffled-pairs level the evaluation reports next to it.
 */

/** Block sides 4, 8, 16, … while at least 4 blocks fit across the image's shorter side. */
export const layoutScales = (width: number, height: number): Array<number> => {
  const scales: Array<number> = []
  for (let w = 4; Math.min(width, height) / w >= 4; w *= 2) scales.push(w)
  return scales
}

/** Below every normalised amplitude that matters (−60 dB), so an all-zero block has a logarithm. */
const FLOOR = 1e-3

/** ln(max(mean, FLOOR)) of every full w × w block, row-major (partial blocks at the right and bottom edges are left out). */
export const blockLogMeans = (image: SampleImage, w: number): Float64Array => {
  const across = Math.floor(image.width / w)
  const down = Math.floor(image.height / w)
  const out = new Float64Array(across * down)
  for (let by = 0; by < down; by++) {
    for (let bx = 0; bx < across; bx++) {
      let sum = 0
      for (let y = by * w; y < (by + 1) * w; y++) {
        for (let x = bx * w; x < (bx + 1) * w; x++) sum += image.data[y * image.width + x]!
      }
      out[by * across + bx] = Math.log(Math.max(sum / (w * w), FLOOR))
    }
  }
  return out
}

/** Pearson's r; 0 when either side does not vary (a flat image agrees with no layout). */
export const pearson = (a: Float64Array, b: Float64Array): number => {
  const n = a.length
  let meanA = 0
  let meanB = 0
  for (let i = 0; i < n; i++) {
    meanA += a[i]!
    meanB += b[i]!
  }
  meanA /= n
  meanB /= n
  let ab = 0
  let aa = 0
  let bb = 0
  for (let i = 0; i < n; i++) {
    const da = a[i]! - meanA
    const db = b[i]! - meanB
    ab += da * db
    aa += da * da
    bb += db * db
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0
}

export interface LayoutAgreement {
  /** The mean of `perScale`'s correlations. */
  readonly score: number
  readonly perScale: ReadonlyArray<{ readonly block: number; readonly r: number }>
}

export const layoutAgreement = (generated: SampleImage, truth: SampleImage, scales: ReadonlyArray<number>): LayoutAgreement => {
  if (generated.width !== truth.width || generated.height !== truth.height) {
    throw new Error(`${generated.name} is ${generated.width} × ${generated.height}, its truth ${truth.name} ${truth.width} × ${truth.height}`)
  }
  if (scales.length === 0) throw new Error(`${generated.name}: no block scale fits a ${generated.width} × ${generated.height} image`)
  const perScale = scales.map((block) => ({ block, r: pearson(blockLogMeans(generated, block), blockLogMeans(truth, block)) }))
  return { score: perScale.reduce((s, p) => s + p.r, 0) / perScale.length, perScale }
}
