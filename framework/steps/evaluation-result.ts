import type { PairedEvaluation } from "./paired-evaluation.ts"
import type { AmplitudeDistances } from "../metrics/amplitude-distances.ts"
import type { EvaluationEvidence, ImageEvidence, ReferenceEvidence } from "../metrics/evaluation-evidence.ts"
import type { DistributionBand, EstimateInterval } from "../metrics/evaluation-intervals.ts"
import type { GlcmProperties } from "../metrics/glcm.ts"
import type { StatisticName } from "../metrics/metric-catalog.ts"
import type { Distribution } from "../metrics/set-comparison.ts"

/**
 * What an evaluate step writes as `evaluation.json`: everything the report needs about one
 * experiment's samples against the real reference set, so reports never recompute anything.
 * Every number about the generated images is in `estimates` with its interval (keys from
 * framework/metrics/metric-catalog.ts); the blocks below keep what charts and tables draw.
 */
export const evaluationFile = "evaluation.json"

/**
 * `evidence.json` next to it: what comparisons between strategies resample (per-image atoms,
 * histograms, GLCM, statistics, CLIP scores and embeddings; the reference set's), as base64
 * little-endian arrays.
 */
export const evidenceFile = "evidence.json"

/** Per-image statistics averaged over a set (ENL and CV are meaningful per image, not pooled). */
export type MeanStatistics = Readonly<Record<StatisticName, number>>

export interface PromptScore {
  readonly prompt: string
  /** Its position in the declaration's prompts. */
  readonly promptIndex: number
  readonly split: "seen" | "unseen"
  /** Mean of 100 · cos(image, text) over the prompt's samples. */
  readonly score: number
  readonly samples: number
}

export type PromptFollowingRecord =
  | { readonly prompts: number; readonly k: number; readonly chance: { readonly top1: number; readonly topk: number } }
  | { readonly absent: string }

/**
 * What the report's sample grid reads beside one declared prompt's samples: the scene its text
 * names (caption-scene.ts), its samples' mean ENL, which prompts they retrieve first, and the
 * reference scenes that name the same scene, with their mean ENL and a few previews.
 */
export interface PromptReading {
  readonly promptIndex: number
  /** As declared (the report's row label). */
  readonly prompt: string
  readonly split: "seen" | "unseen"
  /** The scene its text names; absent when it names none. */
  readonly scene?: string
  readonly samples: number
  /** Mean per-image ENL of its samples (as statistics.enl averages them); null when none is finite. */
  readonly enl: number | null
  /**
   * With prompt following measured: each prompt its samples put first (CLIP top-1 among the
   * evaluation's prompts), by its share of their first places (ties split evenly), highest first;
   * the own prompt's share is their mean top-1.
   */
  readonly retrieved?: ReadonlyArray<{ readonly promptIndex: number; readonly share: number }>
  readonly reference: {
    /** How many reference images have a caption naming the same scene (0 without a scene). */
    readonly scenes: number
    /** Their mean per-image ENL (null when none is finite); absent when there are none. */
    readonly enl?: number | null
    /** Indices into previews.reference of the first few of them, in reference order. */
    readonly previews: ReadonlyArray<number>
  }
}

/** How the intervals were made. */
export interface UncertaintyRecord {
  readonly level: number
  readonly resamples: number
  readonly seed: number
  /** Noise draws (sampling seed × sample index) resampled; every prompt stays in every resample. */
  readonly draws: number
}

export interface EvaluationResult {
  readonly experiments: ReadonlyArray<string>
  /** Every estimate with its interval, by metric-catalog id; null in JSON where not a number. */
  readonly estimates: Readonly<Record<string, EstimateInterval>>
  readonly uncertainty: UncertaintyRecord
  readonly generated: { readonly images: number; readonly statistics: MeanStatistics }
  readonly reference: { readonly images: number; readonly statistics: MeanStatistics }
  readonly amplitude: {
    readonly domain: "amplitude" | "db"
    /** How the domain was binned for KL / JS / Hellinger / Bhattacharyya. */
    readonly bins: number
    readonly range: readonly [number, number]
    readonly klPseudoCount: number
    readonly distances: AmplitudeDistances
    readonly generatedDistribution: Distribution & { readonly band?: DistributionBand }
    readonly referenceDistribution: Distribution
  }
  readonly texture: {
    readonly levels: number
    readonly distances: ReadonlyArray<number>
    readonly angles: ReadonlyArray<number>
    /** Canberra distance between the sets' mean GLCM properties. */
    readonly canberra: number
    readonly generated: GlcmProperties
    readonly reference: GlcmProperties
  }
  readonly alignment?: {
    /** The CLIP of the absolute alignment (and of FID_CLIP, KID_CLIP, CMMD). */
    readonly clip: string
    /** The CLIP that judged prompt following, when it is not `clip` (`alignment.promptFollowing`). */
    readonly judge?: string
    readonly seen?: number
    readonly unseen?: number
    readonly prompts: ReadonlyArray<PromptScore>
    /**
     * Prompt following (estimates prompt_following.*): measured among `prompts` distinct prompts
     * with top-`k` retrieval, beside the chance levels 1/P and k/P; or why it is undefined.
     */
    readonly promptFollowing?: PromptFollowingRecord
    /** Over the CLIP image embeddings of generated vs reference images; absent when not computable. */
    readonly fidClip?: number
    readonly kidClip?: number
    readonly cmmd?: number
    readonly notes: ReadonlyArray<string>
  }
  /** A conditioned experiment's paired evaluation: each sample against its scene's true image (paired-evaluation.ts). */
  readonly paired?: PairedEvaluation
  /** Per declared prompt, in declaration order: what the report's sample grid reads in its row. */
  readonly promptReadings: ReadonlyArray<PromptReading>
  /** PNG previews copied next to this file: generated (by prompt) and the reference scenes the prompts name. */
  readonly previews: {
    readonly generated: ReadonlyArray<{ readonly file: string; readonly prompt: string; readonly split: "seen" | "unseen"; readonly seed: number }>
    readonly reference: ReadonlyArray<{ readonly file: string; readonly caption: string }>
  }
  /** Content keys of the steps this evaluation descends from. */
  readonly lineage: { readonly generate: string; readonly train?: string; readonly reference: string }
}

/** JSON has no NaN: writers store null, and a reader takes null back as NaN. */
export const estimatesFromJson = (estimates: Readonly<Record<string, unknown>>): Record<string, EstimateInterval> =>
  Object.fromEntries(
    Object.entries(estimates).map(([id, raw]) => {
      const e = raw as Record<string, number | null | string>
      const n = (v: unknown) => (typeof v === "number" ? v : NaN)
      return [id, {
        value: n(e.value),
        low: n(e.low),
        high: n(e.high),
        standardError: n(e.standardError),
        ...(e.gapStandardError === undefined ? {} : { gapStandardError: n(e.gapStandardError) }),
        method: (e.method as EstimateInterval["method"]) ?? "none"
      }]
    })
  )

const base64Of = (array: Float32Array | Float64Array) => Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString("base64")

const float32Of = (text: string) => {
  const bytes = Buffer.from(text, "base64")
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))
}
const float64Of = (text: string) => {
  const bytes = Buffer.from(text, "base64")
  return new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))
}

const numberOrNaN = (v: unknown) => (typeof v === "number" ? v : NaN)

/** evidence.json's content: arrays as base64, non-finite numbers as null. */
export const encodeEvidence = (evidence: EvaluationEvidence): unknown => ({
  version: 1,
  settings: evidence.settings,
  referenceKey: evidence.referenceKey,
  ...(evidence.retrieval === undefined ? {} : { retrieval: evidence.retrieval }),
  images: evidence.images.map((image) => ({
    ...image,
    atoms: base64Of(image.atoms),
    histogram: base64Of(image.histogram),
    glcm: base64Of(image.glcm),
    ...(image.embedding === undefined ? {} : { embedding: base64Of(image.embedding) })
  })),
  reference: {
    ...evidence.reference,
    atoms: base64Of(evidence.reference.atoms),
    histogram: base64Of(evidence.reference.histogram),
    glcm: base64Of(evidence.reference.glcm),
    ...(evidence.reference.embeddings === undefined
      ? {}
      : { embeddings: { ...evidence.reference.embeddings, data: base64Of(evidence.reference.embeddings.data) } })
  }
})

/** evidence.json as written: arrays as base64 strings, NaN as null. */
interface EncodedImage extends Pick<ImageEvidence, "promptIndex" | "prompt" | "split" | "seed" | "sample" | "pixels"> {
  readonly atoms: string
  readonly histogram: string
  readonly glcm: string
  readonly statistics: Readonly<Record<string, number | null>>
  readonly clip?: number | null
  readonly following?: ImageEvidence["following"]
  readonly embedding?: string
}
interface EncodedEvidence {
  readonly version: number
  readonly settings: EvaluationEvidence["settings"]
  readonly referenceKey: string
  readonly retrieval?: EvaluationEvidence["retrieval"]
  readonly images: ReadonlyArray<EncodedImage>
  readonly reference: Pick<ReferenceEvidence, "images" | "pixels"> & {
    readonly atoms: string
    readonly histogram: string
    readonly glcm: string
    readonly statistics: Readonly<Record<string, number | null>>
    readonly embeddings?: { readonly count: number; readonly dim: number; readonly data: string }
  }
}

const statisticsOf = (raw: Readonly<Record<string, number | null>>) =>
  Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, numberOrNaN(v)])) as Record<StatisticName, number>

/** Reads evidence.json's content back; throws on a file that is not one (the caller names the file). */
export const decodeEvidence = (json: unknown): EvaluationEvidence => {
  const raw = json as Partial<EncodedEvidence> | null
  if (raw?.version !== 1 || !Array.isArray(raw.images) || typeof raw.reference !== "object" || raw.settings === undefined) {
    throw new Error("is not an evidence file (version 1)")
  }
  const { reference } = raw
  return {
    settings: raw.settings,
    referenceKey: raw.referenceKey ?? "",
    ...(raw.retrieval === undefined ? {} : { retrieval: raw.retrieval }),
    images: raw.images.map((image): ImageEvidence => ({
      promptIndex: image.promptIndex,
      prompt: image.prompt,
      split: image.split,
      seed: image.seed,
      sample: image.sample,
      pixels: image.pixels,
      atoms: float32Of(image.atoms),
      histogram: float64Of(image.histogram),
      glcm: float64Of(image.glcm),
      statistics: statisticsOf(image.statistics),
      ...(typeof image.clip === "number" ? { clip: image.clip } : {}),
      ...(image.following === undefined ? {} : { following: image.following }),
      ...(typeof image.embedding === "string" ? { embedding: float32Of(image.embedding) } : {})
    })),
    reference: {
      images: reference.images,
      pixels: reference.pixels,
      atoms: float32Of(reference.atoms),
      histogram: float64Of(reference.histogram),
      glcm: float64Of(reference.glcm),
      statistics: statisticsOf(reference.statistics),
      ...(reference.embeddings === undefined
        ? {}
        : { embeddings: { count: reference.embeddings.count, dim: reference.embeddings.dim, data: float32Of(reference.embeddings.data) } })
    }
  }
}
