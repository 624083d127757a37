import { EVALUATION_METRICS, type MetricDefinition, type MetricDirection } from "../framework/metrics/metric-catalog.ts"
import { estimateOf, type StrategyResult } from "./study-results.ts"

/**
 * The metrics the comparison table shows: the evaluation metrics of the metric catalog, with the
 * direction that makes a value better (distances, FID_CLIP, KID_CLIP, CMMD and the texture
 * Canberra distance lower; CLIP alignment higher; ENL and CV closer to the real set's).
 */
export type Direction = MetricDirection
export type MetricColumn = MetricDefinition

export const metricColumns: ReadonlyArray<MetricColumn> = EVALUATION_METRICS

export const directionMark: Record<Direction, string> = { lower: "↓", higher: "↑", closer: "≈" }
export const directionText: Record<Direction, string> = {
  lower: "lower is better",
  higher: "higher is better",
  closer: "closest to the real set is better"
}

/** A finite number, or undefined (absent, null, NaN). Infinity counts as a value: it is the worst distance. */
export const numeric = (value: number | null | undefined): number | undefined => typeof value === "number" && !Number.isNaN(value) ? value : undefined

/** The real set's value a "closer" estimate should approach, as the strategy's evaluation measured it. */
export const realValueOf = (strategy: StrategyResult, id: string): number | undefined =>
  numeric(strategy.statistics?.definitions.find((d) => d.id === id)?.reference)

/**
 * How far a strategy's value is from good, on one scale for every direction: the value itself
 * (lower), its negation (higher), the gap to the real set's value (closer).
 */
export const badness = (column: MetricColumn, strategy: StrategyResult): number | undefined => {
  const value = numeric(estimateOf(strategy, column.id)?.value)
  if (value === undefined) return undefined
  if (column.direction === "lower") return value
  if (column.direction === "higher") return -value
  const reference = realValueOf(strategy, column.id)
  return reference === undefined ? undefined : Math.abs(value - reference)
}
