import { formatChange, formatValue } from "../number-format.ts"
import { badness, directionMark, directionText, metricColumns, numeric, type MetricColumn } from "../metric-columns.ts"
import type { StrategyResult, StudyResults } from "../study-results.ts"
import type { ReportTable, TableCell } from "./report-table.ts"

/** Columns at least one strategy has a value for (alignment and FID need a CLIP model). */
export const presentColumns = (results: StudyResults): ReadonlyArray<MetricColumn> =>
  metricColumns.filter((c) => results.strategies.some((s) => c.value(s.evaluation) !== undefined))

/** The real set's value of a "closer" column, when every strategy was judged against the same one. */
const sharedReference = (column: MetricColumn, results: StudyResults): number | undefined => {
  const values = results.strategies.map((s) => numeric(column.reference?.(s.evaluation)))
  return values.every((v) => v !== undefined && v === values[0]) ? values[0] : undefined
}

const headerOf = (column: MetricColumn, results: StudyResults): string => {
  if (column.direction !== "closer") return `${column.label} ${directionMark[column.direction]}`
  const reference = sharedReference(column, results)
  return `${column.label} ${directionMark.closer} ${reference === undefined ? "real" : `real ${formatValue(reference)}`}`
}

/**
 * Relative to the baseline, on the scale the direction judges: the value itself for ↓ and ↑,
 * the gap to the real set's value for ≈.
 */
const changeAgainst = (column: MetricColumn, strategy: StrategyResult, baseline: StrategyResult): TableCell["change"] => {
  const mine = badness(column, strategy.evaluation)
  const theirs = badness(column, baseline.evaluation)
  if (mine === undefined || theirs === undefined || theirs === 0 || !Number.isFinite(mine) || !Number.isFinite(theirs)) return undefined
  const change = column.direction === "higher" ? (-mine + theirs) / Math.abs(theirs) : (mine - theirs) / Math.abs(theirs)
  const text = formatChange(change)
  const improved = column.direction === "higher" ? change > 0 : change < 0
  return { text, tone: text === "±0 %" ? "same" : improved ? "better" : "worse" }
}

/** The best score in a column (lowest badness), to mark its row. */
const bestBadness = (column: MetricColumn, results: StudyResults): number | undefined => {
  const all = results.strategies.map((s) => badness(column, s.evaluation)).filter((b): b is number => b !== undefined)
  return all.length === 0 ? undefined : Math.min(...all)
}

export const metricTable = (results: StudyResults): ReportTable => {
  const columns = presentColumns(results)
  const best = columns.map((c) => bestBadness(c, results))
  const baseline = results.baseline
  const rows = results.strategies.map((s): ReadonlyArray<TableCell> => [
    { text: s === baseline ? `${s.name} (baseline)` : s.name, colour: s.colour },
    ...columns.map((column, k): TableCell => {
      const value = column.value(s.evaluation)
      const score = badness(column, s.evaluation)
      const change = baseline === undefined || s === baseline ? undefined : changeAgainst(column, s, baseline)
      return {
        text: formatValue(value),
        ...(score !== undefined && score === best[k] && results.strategies.length > 1 ? { best: true } : {}),
        ...(change === undefined ? {} : { change })
      }
    })
  ])
  const domains = [...new Set(results.strategies.map((s) => `${s.evaluation.amplitude.domain}, ${s.evaluation.amplitude.bins} bins`))]
  return {
    id: "metrics",
    caption: "Metrics of the generated images against the real reference set",
    header: ["strategy", ...columns.map((c) => headerOf(c, results))],
    rows,
    notes: [
      `${directionMark.lower} ${directionText.lower}; ${directionMark.higher} ${directionText.higher}; ${directionMark.closer} ${directionText.closer}. Bold: best in its column.`,
      baseline === undefined
        ? "No experiment is marked `baseline: true`, so no value is shown relative to a baseline."
        : `In parentheses: change against ${baseline.name}, the baseline (for ${directionMark.closer} columns, change of the distance to the real value); negative is better for ${directionMark.lower} and ${directionMark.closer}, positive for ${directionMark.higher}.`,
      `Amplitude distances in the declared domain (${domains.join("; ")}); KL and JS in nats. n/a: not computable for this set.`
    ]
  }
}
