import { Effect } from "effect"
import { GLCM_PROPERTIES, type GlcmProperties, graycomatrixOfTrustedLevels, graycoprops } from "./glcm.ts"
import { checkedMoments, MetricInputError, type SampleImage } from "./metric-input.ts"

/**
 * GLCM texture of SAR amplitude images, one image at a time and per set (issue 4's chain):
 * linear amplitude A → v = clip(A / (mean(A) + 3·std(A)), 0, 1) with the image's own population
 * statistics over the selected pixels (summed as numpy sums, so equal to numpy's to the bit) →
 * q = min(L − 1, floor(v·L)) → symmetric, normed GLCM.
 */
export interface TextureSettings {
  readonly levels: number
  readonly distances: ReadonlyArray<number>
  /** Degrees, as the command line takes them. */
  readonly anglesDegrees: ReadonlyArray<number>
}

/** numpy.deg2rad: x · (π / 180), whose rounding decides the neighbour offset at 30°, 150°, … */
const radians = (degrees: number) => degrees * (Math.PI / 180)

/**
 * Grey levels q = min(L − 1, floor(clip(A / scale, 0, 1)·L)), divided and clipped in float64 as
 * numpy evaluates the formula, so that a level matches its golden at every boundary. Masked-out
 * pixels keep level 0 (they enter no pair).
 */
const quantise = (amplitude: SampleImage, scale: number, levels: number): Uint8Array | Uint16Array => {
  const { data, mask } = amplitude
  const q = levels <= 256 ? new Uint8Array(data.length) : new Uint16Array(data.length)
  if (!(scale > 0)) return q
  const top = levels - 1
  for (let i = 0; i < data.length; i++) {
    if (mask !== undefined && mask[i] === 0) continue
    let v = data[i]! / scale
    v = v < 0 ? 0 : v > 1 ? 1 : v
    // v·levels ≤ 65536, so truncation to int32 is floor.
    const level = (v * levels) | 0
    q[i] = level > top ? top : level
  }
  return q
}

/** GLCM properties of one linear-amplitude image; masked-out pixels take part in no pair. */
export const imageTexture = (
  amplitude: SampleImage,
  settings: TextureSettings
): Effect.Effect<GlcmProperties, MetricInputError> =>
  Effect.gen(function*() {
    const { levels, distances, anglesDegrees } = settings
    if (!(Number.isInteger(levels) && levels >= 1 && levels <= 65536)) {
      return yield* new MetricInputError({ input: amplitude.name, reason: `levels must be an integer in [1, 65536], got ${levels}` })
    }
    if (distances.length === 0 || anglesDegrees.length === 0) {
      return yield* new MetricInputError({ input: amplitude.name, reason: "at least one distance and one angle are needed" })
    }
    const notFinite = [...distances, ...anglesDegrees].find((x) => !Number.isFinite(x))
    if (notFinite !== undefined) {
      return yield* new MetricInputError({ input: amplitude.name, reason: `distance or angle ${notFinite} is not a finite number` })
    }
    const { mean, std } = yield* checkedMoments(amplitude)
    const q = quantise(amplitude, mean + 3 * std, levels)
    const glcm = graycomatrixOfTrustedLevels(
      { name: amplitude.name, width: amplitude.width, height: amplitude.height, data: q, ...(amplitude.mask ? { mask: amplitude.mask } : {}) },
      { distances, angles: anglesDegrees.map(radians), levels, symmetric: true, normed: true }
    )
    return graycoprops(glcm)
  })

/** A set's texture: each property's mean over the images, every image weighing the same. */
export const setTexture = (textures: ReadonlyArray<GlcmProperties>): GlcmProperties => {
  const first = textures[0]!
  return Object.fromEntries(
    GLCM_PROPERTIES.map((name) => [
      name,
      first[name].map((row, d) => row.map((_, a) => textures.reduce((s, t) => s + t[name][d]![a]!, 0) / textures.length))
    ])
  ) as GlcmProperties
}

/**
 * Distance between two sets' textures: the Canberra distance Σ |x − y| / (|x| + |y|) between
 * their mean descriptors (every property at every distance and angle; a 0/0 term counts 0, as in
 * scipy.spatial.distance.canberra). Each term lies in [0, 1], so properties of very different
 * scales (contrast vs ASM) weigh alike; the sum ranges over [0, 10 · distances · angles].
 */
export const textureSetDistance = (a: GlcmProperties, b: GlcmProperties): number => {
  let total = 0
  for (const name of GLCM_PROPERTIES) {
    a[name].forEach((row, d) =>
      row.forEach((x, k) => {
        const y = b[name][d]![k]!
        const denominator = Math.abs(x) + Math.abs(y)
        if (denominator > 0) total += Math.abs(x - y) / denominator
      })
    )
  }
  return total
}
