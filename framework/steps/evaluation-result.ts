import type { AmplitudeDistances } from "../metrics/amplitude-distances.ts"
import type { AmplitudeStatistics } from "../metrics/amplitude-statistics.ts"
import type { GlcmProperties } from "../metrics/glcm.ts"
import type { Distribution } from "../metrics/set-comparison.ts"

/**
 * What an evaluate step writes as `evaluation.json`: everything the report needs about one
 * experiment's samples against the real reference set, so reports never recompute anything.
 */
export const evaluationFile = "evaluation.json"

/** Per-image statistics averaged over a set (ENL and CV are meaningful per image, not pooled). */
export type MeanStatistics = Pick<AmplitudeStatistics, "mean" | "std" | "cv" | "enl" | "gammaLooks">

export interface PromptScore {
  readonly prompt: string
  readonly split: "seen" | "unseen"
  /** Mean of 100 · cos(image, text) over the prompt's samples. */
  readonly score: number
  readonly samples: number
}

export interface EvaluationResult {
  readonly experiments: ReadonlyArray<string>
  readonly generated: { readonly images: number; readonly statistics: MeanStatistics }
  readonly reference: { readonly images: number; readonly statistics: MeanStatistics }
  readonly amplitude: {
    readonly domain: "amplitude" | "db"
    /** How the domain was binned for KL / JS / Hellinger / Bhattacharyya. */
    readonly bins: number
    readonly range: readonly [number, number]
    readonly klPseudoCount: number
    readonly distances: AmplitudeDistances
    readonly generatedDistribution: Distribution
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
    readonly clip: string
    readonly seen?: number
    readonly unseen?: number
    readonly prompts: ReadonlyArray<PromptScore>
    /** Over the CLIP image embeddings of generated vs reference images; absent when not computable. */
    readonly fid?: number
    readonly kid?: number
    readonly cmmd?: number
    readonly notes: ReadonlyArray<string>
  }
  /** PNG previews copied next to this file: generated (by prompt) and reference. */
  readonly previews: {
    readonly generated: ReadonlyArray<{ readonly file: string; readonly prompt: string; readonly split: "seen" | "unseen"; readonly seed: number }>
    readonly reference: ReadonlyArray<{ readonly file: string; readonly caption: string }>
  }
  /** Content keys of the steps this evaluation descends from, to find training curves in the cache. */
  readonly lineage: { readonly generate: string; readonly train?: string; readonly reference: string }
}
