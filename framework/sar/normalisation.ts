import type { Normalisation } from "../declaration/dataset.ts"

/*
 * The normalisations a dataset can declare, as pure functions on linear amplitude.
 * Each maps to [0, 1]; `toTrainingRange` then maps to [-1, 1] for the diffusion model.
 * A validity mask (1 = valid) excludes no-data pixels from the statistics; non-finite values are
 * always excluded. Invalid pixels come out as 0.
 */

/** 1 where a pixel is finite and not the no-data value, else 0. */
export const validityMask = (values: Float32Array, noData?: number): Uint8Array => {
  const mask = new Uint8Array(values.length)
  const hasNoData = noData !== undefined && !Number.isNaN(noData)
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    mask[i] = Number.isFinite(v) && !(hasNoData && v === noData) ? 1 : 0
  }
  return mask
}

const isValid = (values: Float32Array, valid: Uint8Array | undefined, i: number) => (valid === undefined || valid[i] === 1) && Number.isFinite(values[i])

/** Count, mean and sum of squared deviations: combinable across images without losing precision. */
export interface Moments {
  readonly count: number
  readonly mean: number
  readonly m2: number
}

export const emptyMoments: Moments = { count: 0, mean: 0, m2: 0 }

/** Two passes in float64 over the valid pixels of one image. */
export const momentsOf = (values: Float32Array, valid?: Uint8Array): Moments => {
  let count = 0
  let sum = 0
  for (let i = 0; i < values.length; i++) {
    if (isValid(values, valid, i)) {
      count++
      sum += values[i]!
    }
  }
  if (count === 0) return emptyMoments
  const mean = sum / count
  let m2 = 0
  for (let i = 0; i < values.length; i++) {
    if (isValid(values, valid, i)) {
      const d = values[i]! - mean
      m2 += d * d
    }
  }
  return { count, mean, m2 }
}

/** Chan et al.'s pairwise update, for dataset-wide statistics streamed image by image. */
export const combineMoments = (a: Moments, b: Moments): Moments => {
  if (a.count === 0) return b
  if (b.count === 0) return a
  const count = a.count + b.count
  const delta = b.mean - a.mean
  return {
    count,
    mean: a.mean + (delta * b.count) / count,
    m2: a.m2 + b.m2 + (delta * delta * a.count * b.count) / count
  }
}

export interface MeanStd {
  readonly mean: number
  /** Population standard deviation (ddof = 0), as in the seed study. */
  readonly std: number
  readonly count: number
}

export const meanStdOf = (moments: Moments): MeanStd => ({
  mean: moments.count > 0 ? moments.mean : Number.NaN,
  std: moments.count > 0 ? Math.sqrt(moments.m2 / moments.count) : Number.NaN,
  count: moments.count
})

/** Mean and population std of the valid pixels of one image. */
export const amplitudeStatistics = (amplitude: Float32Array, valid?: Uint8Array): MeanStd => meanStdOf(momentsOf(amplitude, valid))

const mapValid = (
  values: Float32Array,
  valid: Uint8Array | undefined,
  f: (v: number) => number
): Float32Array => {
  const out = new Float32Array(values.length)
  for (let i = 0; i < values.length; i++) {
    if (isValid(values, valid, i)) {
      const v = f(values[i]!)
      out[i] = v < 0 ? 0 : v > 1 ? 1 : v
    }
  }
  return out
}

/**
 * The seed study's A / (mean + k·std) clipped to [0, 1], with k = 3 by default. Without given
 * statistics, they are the image's own.
 */
export const normaliseMeanStd = (
  amplitude: Float32Array,
  options: { readonly k?: number; readonly statistics?: { readonly mean: number; readonly std: number }; readonly valid?: Uint8Array } = {}
): Float32Array => {
  const k = options.k ?? 3
  const { mean, std } = options.statistics ?? amplitudeStatistics(amplitude, options.valid)
  const scale = mean + k * std
  // A constant-zero (or empty) image has nothing to scale; it stays 0 rather than NaN.
  if (!(scale > 0)) return new Float32Array(amplitude.length)
  return mapValid(amplitude, options.valid, (a) => a / scale)
}

/** 20·log10(A) mapped from [min, max] dB to [0, 1], clipped. */
export const normaliseDbWindow = (amplitude: Float32Array, min: number, max: number, valid?: Uint8Array): Float32Array =>
  mapValid(amplitude, valid, (a) => (20 * Math.log10(a) - min) / (max - min))

const sortedValid = (values: Float32Array, valid?: Uint8Array): Float64Array => {
  let count = 0
  for (let i = 0; i < values.length; i++) if (isValid(values, valid, i)) count++
  const sorted = new Float64Array(count)
  let j = 0
  for (let i = 0; i < values.length; i++) if (isValid(values, valid, i)) sorted[j++] = values[i]!
  return sorted.sort()
}

/** numpy's default ("linear") percentile of a sorted array; p in [0, 100]. */
const percentileOfSorted = (sorted: Float64Array, p: number): number => {
  if (sorted.length === 0) return Number.NaN
  const position = (p / 100) * (sorted.length - 1)
  const lo = Math.floor(position)
  const hi = Math.min(lo + 1, sorted.length - 1)
  const t = position - lo
  const a = sorted[lo]!
  const b = sorted[hi]!
  // numpy's lerp form, exact at both ends.
  return t >= 0.5 ? b - (b - a) * (1 - t) : a + (b - a) * t
}

/** Percentiles (numpy's linear interpolation) of the valid pixels; sorts once for all of `ps`. */
export const percentiles = (values: Float32Array, ps: ReadonlyArray<number>, valid?: Uint8Array): Array<number> => {
  const sorted = sortedValid(values, valid)
  return ps.map((p) => percentileOfSorted(sorted, p))
}

/** Amplitude mapped from its [low, high] percentiles to [0, 1], clipped. */
export const normalisePercentiles = (amplitude: Float32Array, low: number, high: number, valid?: Uint8Array): Float32Array => {
  // One percentile per p asked for.
  const [a, b] = percentiles(amplitude, [low, high], valid) as [number, number]
  if (!(b > a)) return new Float32Array(amplitude.length)
  return mapValid(amplitude, valid, (v) => (v - a) / (b - a))
}

/**
 * Applies a declared normalisation. `datasetStatistics` is required when the declaration says
 * `statistics: "dataset"` (computed over all files by the caller, e.g. with `combineMoments`).
 */
export const normalise = (
  amplitude: Float32Array,
  normalisation: Normalisation,
  options: { readonly valid?: Uint8Array; readonly datasetStatistics?: { readonly mean: number; readonly std: number } } = {}
): Float32Array => {
  switch (normalisation._tag) {
    case "mean-std": {
      const { statistics } = normalisation
      const given = statistics === "per-image" ? undefined : statistics === "dataset" ? options.datasetStatistics : statistics
      if (statistics === "dataset" && given === undefined) {
        throw new Error("mean-std normalisation with dataset statistics needs datasetStatistics")
      }
      return normaliseMeanStd(amplitude, { k: normalisation.k, ...(given ? { statistics: given } : {}), ...(options.valid ? { valid: options.valid } : {}) })
    }
    case "db-window":
      return normaliseDbWindow(amplitude, normalisation.min, normalisation.max, options.valid)
    case "percentile":
      return normalisePercentiles(amplitude, normalisation.low, normalisation.high, options.valid)
  }
}

/** [0, 1] → [-1, 1], the range the diffusion model trains on. */
export const toTrainingRange = (unit: Float32Array): Float32Array => {
  const out = new Float32Array(unit.length)
  for (let i = 0; i < unit.length; i++) out[i] = unit[i]! * 2 - 1
  return out
}

/** [-1, 1] → [0, 1], for writing generated samples. */
export const fromTrainingRange = (symmetric: Float32Array): Float32Array => {
  const out = new Float32Array(symmetric.length)
  for (let i = 0; i < symmetric.length; i++) out[i] = (symmetric[i]! + 1) / 2
  return out
}
