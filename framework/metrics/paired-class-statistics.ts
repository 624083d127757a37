import { combineMoments, emptyMoments, type Moments, momentsOf } from "../sar/normalisation.ts"

/**
 * Amplitude statistics inside each class region of the condition's label map, over every pair, for the
 * generated images and for the true ones: does the generated SAR put water dark and towns bright where
 * the label map says? Pixels of a class are pooled over all pairs (a region may be small in one scene),
 * with the definitions of amplitude-statistics.ts: population moments, CV = std / mean of amplitude,
 * ENL = mean(I)² / var(I) of intensity I = A².
 */
export interface ClassAmplitude {
  readonly pixels: number
  readonly mean: number
  readonly cv: number
  readonly enl: number
}

export interface ClassComparison {
  /** The label value and the class it stands for. */
  readonly value: number
  readonly name: string
  readonly generated: ClassAmplitude
  readonly truth: ClassAmplitude
}

/** One pair: both images' amplitude on the label map's grid, and each pixel's class (its index in `classes`, −1 for none). */
export interface ClassPair {
  readonly generated: Float32Array
  readonly truth: Float32Array
  readonly classes: Int32Array
}

interface Accumulated {
  amplitude: Moments
  intensity: Moments
}

const statisticsOf = ({ amplitude, intensity }: Accumulated): ClassAmplitude => {
  const n = amplitude.count
  if (n === 0) return { pixels: 0, mean: NaN, cv: NaN, enl: NaN }
  return { pixels: n, mean: amplitude.mean, cv: Math.sqrt(amplitude.m2 / n) / amplitude.mean, enl: (intensity.mean * intensity.mean) / (intensity.m2 / n) }
}

/** Per-class statistics, in `classes` order; classes absent from every map have 0 pixels and NaN statistics. */
export const classAmplitudeStatistics = (
  pairs: Iterable<ClassPair>,
  classes: ReadonlyArray<{ readonly value: number; readonly name: string }>
): Array<ClassComparison> => {
  const fresh = (): Accumulated => ({ amplitude: emptyMoments, intensity: emptyMoments })
  const generated = classes.map(fresh)
  const truth = classes.map(fresh)
  for (const pair of pairs) {
    const n = pair.classes.length
    if (pair.generated.length !== n || pair.truth.length !== n) {
      throw new Error(`a pair of ${pair.generated.length} and ${pair.truth.length} pixels for a label map of ${n}`)
    }
    classes.forEach((_, k) => {
      const mask = new Uint8Array(n)
      for (let i = 0; i < n; i++) mask[i] = pair.classes[i] === k ? 1 : 0
      for (const [image, into] of [[pair.generated, generated[k]!], [pair.truth, truth[k]!]] as const) {
        const intensity = image.map((a) => a * a)
        into.amplitude = combineMoments(into.amplitude, momentsOf(image, mask))
        into.intensity = combineMoments(into.intensity, momentsOf(intensity, mask))
      }
    })
  }
  return classes.map((c, k) => ({ ...c, generated: statisticsOf(generated[k]!), truth: statisticsOf(truth[k]!) }))
}

/** Each pixel's class from a one-hot condition (HWC, `channels` classes): the channel holding 1, −1 where none does. */
export const classIndexOfOneHot = (oneHot: Float32Array, channels: number): Int32Array => {
  const out = new Int32Array(oneHot.length / channels).fill(-1)
  for (let p = 0; p < out.length; p++) {
    for (let k = 0; k < channels; k++) {
      if (oneHot[p * channels + k] === 1) {
        out[p] = k
        break
      }
    }
  }
  return out
}
