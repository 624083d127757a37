import type { AmplitudeStatistics } from "../metrics/amplitude-statistics.ts"
import type { StatisticName } from "../metrics/metric-catalog.ts"
import { meanStatistics } from "../metrics/evaluation-evidence.ts"
import { firstPlaceShares } from "../metrics/prompt-following.ts"
import { sceneOf } from "./caption-scene.ts"
import type { PromptReading } from "./evaluation-result.ts"

type Statistics = Pick<AmplitudeStatistics, StatisticName>

/** Reference scenes previewed per prompt: as many as the report's grid shows seeds in a cell. */
export const referencePreviewsPerPrompt = 4

export interface ReadingsRequest {
  /** Per generated image, in order. */
  readonly generated: ReadonlyArray<{
    readonly promptIndex: number
    readonly declaredPrompt: string
    readonly split: "seen" | "unseen"
    readonly statistics: Statistics
  }>
  /** Per reference image, in order. */
  readonly reference: ReadonlyArray<{ readonly caption: string; readonly statistics: Statistics }>
  /**
   * With prompt following measured: the image × prompt score matrix over the distinct scorer prompts,
   * and each generated image's row among them.
   */
  readonly retrieval?: { readonly scores: Float64Array; readonly prompts: number; readonly own: ReadonlyArray<number> }
}

/** The mean per-image ENL, as the evaluation's statistics.enl averages it (finite ones). */
const enlOf = (images: ReadonlyArray<{ readonly statistics: Statistics }>) => {
  const { enl } = meanStatistics(images.map((i) => i.statistics))
  return Number.isFinite(enl) ? enl : null
}

/**
 * Each declared prompt's reading (evaluation-result.ts), in order of first appearance, and the
 * reference images whose previews they show (ascending; `PromptReading.reference.previews` index it).
 */
export const promptReadings = (request: ReadingsRequest): { readonly readings: ReadonlyArray<PromptReading>; readonly previewed: ReadonlyArray<number> } => {
  const referenceScenes = request.reference.map((r) => sceneOf(r.caption))
  const groups = new Map<number, Array<number>>()
  request.generated.forEach((g, i) => {
    const group = groups.get(g.promptIndex)
    if (group === undefined) groups.set(g.promptIndex, [i])
    else group.push(i)
  })
  // A scorer prompt's row stands for the declared prompt of the first image scored with it.
  const promptOfRow = new Map<number, number>()
  request.retrieval?.own.forEach((row, i) => {
    if (!promptOfRow.has(row)) promptOfRow.set(row, request.generated[i]!.promptIndex)
  })
  const matches = [...groups].map(([, images]) => {
    const scene = sceneOf(request.generated[images[0]!]!.declaredPrompt)
    return scene === undefined ? [] : referenceScenes.flatMap((s, r) => (s === scene ? [r] : []))
  })
  const previewed = [...new Set(matches.flatMap((m) => m.slice(0, referencePreviewsPerPrompt)))].sort((a, b) => a - b)
  const readings = [...groups].map(([promptIndex, images], g): PromptReading => {
    const first = request.generated[images[0]!]!
    const scene = sceneOf(first.declaredPrompt)
    const matching = matches[g]!
    const retrieval = request.retrieval
    const retrieved = retrieval === undefined ? undefined : [...firstPlaceShares(retrieval.scores, retrieval.prompts, images).entries()]
      .filter(([, share]) => share > 0)
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .map(([row, share]) => ({ promptIndex: promptOfRow.get(row)!, share }))
    return {
      promptIndex,
      prompt: first.declaredPrompt,
      split: first.split,
      ...(scene === undefined ? {} : { scene }),
      samples: images.length,
      enl: enlOf(images.map((i) => request.generated[i]!)),
      ...(retrieved === undefined ? {} : { retrieved }),
      reference: {
        scenes: matching.length,
        ...(matching.length === 0 ? {} : { enl: enlOf(matching.map((r) => request.reference[r]!)) }),
        previews: matching.slice(0, referencePreviewsPerPrompt).map((r) => previewed.indexOf(r))
      }
    }
  })
  return { readings, previewed }
}
