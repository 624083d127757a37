import type { EvaluationResult } from "../framework/steps/evaluation-result.ts"

/**
 * The metrics the comparison table shows, with the direction that makes a value better
 * (framework/metrics): every distance, FID/KID/CMMD and the texture Canberra distance are better
 * lower; CLIP alignment is better higher; ENL and CV are better closer to the real set's.
 */
export type Direction = "lower" | "higher" | "closer"

export interface MetricColumn {
  readonly id: string
  readonly label: string
  readonly direction: Direction
  /** The value of an evaluation; undefined when it was not computed (null in JSON: not a number). */
  readonly value: (e: EvaluationResult) => number | null | undefined
  /** For "closer" metrics: the real set's value the generated one should approach. */
  readonly reference?: (e: EvaluationResult) => number | null | undefined
}

export const directionMark: Record<Direction, string> = { lower: "↓", higher: "↑", closer: "≈" }
export const directionText: Record<Direction, string> = {
  lower: "lower is better",
  higher: "higher is better",
  closer: "closest to the real set is better"
}

const amplitude = (id: keyof EvaluationResult["amplitude"]["distances"], label: string): MetricColumn => ({
  id: `amplitude.${id}`,
  label,
  direction: "lower",
  value: (e) => e.amplitude.distances[id]
})

export const metricColumns: ReadonlyArray<MetricColumn> = [
  amplitude("wasserstein", "Wasserstein-1"),
  amplitude("ks", "KS"),
  amplitude("kl", "KL"),
  amplitude("js", "JS"),
  amplitude("hellinger", "Hellinger"),
  amplitude("bhattacharyya", "Bhattacharyya"),
  { id: "texture.canberra", label: "GLCM Canberra", direction: "lower", value: (e) => e.texture.canberra },
  {
    id: "statistics.enl",
    label: "ENL",
    direction: "closer",
    value: (e) => e.generated.statistics.enl,
    reference: (e) => e.reference.statistics.enl
  },
  {
    id: "statistics.cv",
    label: "CV",
    direction: "closer",
    value: (e) => e.generated.statistics.cv,
    reference: (e) => e.reference.statistics.cv
  },
  { id: "alignment.seen", label: "CLIP seen", direction: "higher", value: (e) => e.alignment?.seen },
  { id: "alignment.unseen", label: "CLIP unseen", direction: "higher", value: (e) => e.alignment?.unseen },
  { id: "embedding.fid", label: "FID (CLIP)", direction: "lower", value: (e) => e.alignment?.fid },
  { id: "embedding.kid", label: "KID (CLIP)", direction: "lower", value: (e) => e.alignment?.kid },
  { id: "embedding.cmmd", label: "CMMD (CLIP)", direction: "lower", value: (e) => e.alignment?.cmmd }
]

/** A finite number, or undefined (absent, null, NaN). Infinity counts as a value: it is the worst distance. */
export const numeric = (value: number | null | undefined): number | undefined =>
  typeof value === "number" && !Number.isNaN(value) ? value : undefined

/**
 * How far a value is from good, on one scale for every direction: the value itself (lower),
 * its negation (higher), the gap to the real set's value (closer).
 */
export const badness = (column: MetricColumn, e: EvaluationResult): number | undefined => {
  const value = numeric(column.value(e))
  if (value === undefined) return undefined
  if (column.direction === "lower") return value
  if (column.direction === "higher") return -value
  const reference = numeric(column.reference?.(e))
  return reference === undefined ? undefined : Math.abs(value - reference)
}
