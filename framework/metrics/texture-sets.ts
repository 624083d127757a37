import { Effect } from "effect"
import { amplitudeStatistics as meanStdOfAmplitude } from "../sar/normalisation.ts"
import { GLCM_PROPERTIES, type GlcmProperties, graycomatrix, graycoprops, quantiseUnit } from "./glcm.ts"
import { checkSampleImage, type MetricInputError, type SampleImage } from "./metric-input.ts"

/**
 * GLCM texture of SAR amplitude images, one image at a time and per set (issue 4's chain):
 * linear amplitude A → v = clip(A / (mean(A) + 3·std(A)), 0, 1) with the image's own population
 * statistics over the selected pixels → q = min(L − 1, floor(v·L)) → symmetric, normed GLCM.
 */
export interface TextureSettings {
  readonly levels: number
  readonly distances: ReadonlyArray<number>
  /** Degrees, as the command line takes them. */
  readonly anglesDegrees: ReadonlyArray<number>
}

/** numpy.deg2rad: x · (π / 180), whose rounding decides the neighbour offset at 30°, 150°, … */
const radians = (degrees: number) => degrees * (Math.PI / 180)

/** The per-image normalisation divisor mean + 3·std (0 or less for an all-zero image). */
export const normalisationScale = (amplitude: SampleImage): number => {
  const { mean, std } = meanStdOfAmplitude(amplitude.data, amplitude.mask)
  return mean + 3 * std
}

/** Grey levels of the chain. Division and clipping in float64, so a level matches numpy's. */
const quantise = (amplitude: SampleImage, scale: number, levels: number): Uint8Array | Uint16Array => {
  const { data, mask } = amplitude
  const q = levels <= 256 ? new Uint8Array(data.length) : new Uint16Array(data.length)
  if (!(scale > 0)) return q
  for (let i = 0; i < data.length; i++) {
    if (mask !== undefined && mask[i] === 0) continue
    const v = data[i] / scale
    q[i] = quantiseUnit(v < 0 ? 0 : v > 1 ? 1 : v, levels)
  }
  return q
}

/** GLCM properties of one linear-amplitude image; masked-out pixels take part in no pair. */
export const imageTexture = (
  amplitude: SampleImage,
  settings: TextureSettings
): Effect.Effect<GlcmProperties, MetricInputError> =>
  Effect.gen(function*() {
    yield* checkSampleImage(amplitude)
    const q = quantise(amplitude, normalisationScale(amplitude), settings.levels)
    const glcm = yield* graycomatrix(
      { name: amplitude.name, width: amplitude.width, height: amplitude.height, data: q, ...(amplitude.mask ? { mask: amplitude.mask } : {}) },
      {
        distances: settings.distances,
        angles: settings.anglesDegrees.map(radians),
        levels: settings.levels,
        symmetric: true,
        normed: true
      }
    )
    return graycoprops(glcm)
  })

/** A set's texture: each property's mean over the images, every image weighing the same. */
export const setTexture = (textures: ReadonlyArray<GlcmProperties>): GlcmProperties => {
  const first = textures[0]
  return Object.fromEntries(
    GLCM_PROPERTIES.map((name) => [
      name,
      first[name].map((row, d) => row.map((_, a) => textures.reduce((s, t) => s + t[name][d][a], 0) / textures.length))
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
        const y = b[name][d][k]
        const denominator = Math.abs(x) + Math.abs(y)
        if (denominator > 0) total += Math.abs(x - y) / denominator
      })
    )
  }
  return total
}
