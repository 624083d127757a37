import { formatChange, formatInterval, formatValue } from "../number-format.ts"
import { badness, directionMark, directionText, metricColumns, numeric, realValueOf, type MetricColumn } from "../metric-columns.ts"
import { isPromptFollowing, promptFollowingNotes, retrievalHeader } from "../prompt-following-columns.ts"
import { estimateOf, isSignificantBest, type StrategyResult, strategyLabel, type StudyResults } from "../study-results.ts"
import type { ReportTable, TableCell } from "./report-table.ts"

/** Columns at least one strategy has a value for (alignment and FID_CLIP need a CLIP model). */
export const presentColumns = (results: StudyResults): ReadonlyArray<MetricColumn> =>
  metricColumns.filter((c) => results.strategies.some((s) => estimateOf(s, c.id) !== undefined))

/** The real set's value of a "closer" column, when every strategy was judged against the same one. */
const sharedReference = (column: MetricColumn, results: StudyResults): number | undefined => {
  const values = results.strategies.map((s) => realValueOf(s, column.id))
  return values.every((v) => v !== undefined && v === values[0]) ? values[0] : undefined
}

const headerOf = (column: MetricColumn, results: StudyResults): string => {
  if (column.direction !== "closer") {
    return retrievalHeader(column, directionMark[column.direction], results) ?? `${column.label} ${directionMark[column.direction]}`
  }
  const reference = sharedReference(column, results)
  return `${column.label} ${directionMark.closer} ${reference === undefined ? "real" : `real ${formatValue(reference)}`}`
}

/**
 * Relative to the baseline, on the scale the direction judges: the value itself for ↓ and ↑,
 * the gap to the real set's value for ≈. Its tone is the verdict of the comparison with the
 * baseline: a change that comparison does not find real is "unclear", whatever its size.
 */
const changeAgainst = (column: MetricColumn, strategy: StrategyResult, baseline: StrategyResult, results: StudyResults): TableCell["change"] => {
  const mine = badness(column, strategy)
  const theirs = badness(column, baseline)
  if (mine === undefined || theirs === undefined || theirs === 0 || !Number.isFinite(mine) || !Number.isFinite(theirs)) return undefined
  const change = column.direction === "higher" ? (-mine + theirs) / Math.abs(theirs) : (mine - theirs) / Math.abs(theirs)
  const text = formatChange(change)
  const verdict = results.statistics.comparisons
    .find((c) => c.why === "baseline" && c.a === strategy.name && c.b === baseline.name)
    ?.lines.find((l) => l.id === column.id)?.verdict
  if (text === "±0 %") return { text, tone: "same" }
  return { text, tone: verdict === "better" ? "better" : verdict === "worse" ? "worse" : "unclear" }
}

const estimateRows = (results: StudyResults, columns: ReadonlyArray<MetricColumn>): ReadonlyArray<ReadonlyArray<TableCell>> => {
  const baseline = results.baseline
  return results.strategies.map((s): ReadonlyArray<TableCell> => [
    { text: s === baseline ? `${strategyLabel(s)} (baseline)` : strategyLabel(s), colour: s.colour },
    ...columns.map((column): TableCell => {
      const estimate = estimateOf(s, column.id)
      const change = baseline === undefined || s === baseline ? undefined : changeAgainst(column, s, baseline, results)
      const interval = formatInterval(estimate?.low, estimate?.high)
      return {
        text: formatValue(numeric(estimate?.value)),
        ...(interval === "" ? {} : { interval }),
        ...(isSignificantBest(results, s, column.id) ? { best: true } : {}),
        ...(change === undefined ? {} : { change })
      }
    })
  ])
}

/** What the marks, brackets, bold and parentheses of an estimate table mean. */
const readingNotes = (results: StudyResults, columns: ReadonlyArray<MetricColumn>): ReadonlyArray<string> => {
  const baseline = results.baseline
  const replicated = results.strategies.some((s) => s.replicates.length > 1)
  const level = Math.round(results.statistics.level * 100)
  const unmarked = columns.filter((c) => results.statistics.best[c.id]?.significant === false).map((c) => c.label)
  const directions = [...new Set(columns.map((c) => c.direction))]
  return [
    `${directions.map((d) => `${directionMark[d]} ${directionText[d]}`).join("; ")}. ` +
    `In brackets: the ${level} % confidence interval — over the noise draws of the samples (bootstrap, BCa)` +
    `${replicated ? "; for a strategy trained with several seeds, the interval of the mean over its seeds (Student t)" : ""}.`,
    `Bold: the best value of its column, and only when it is significantly better than every other strategy's (tests of "Which differences are real", Holm-corrected across the column). ` +
    (unmarked.length === 0 ? "" : `No bold in ${unmarked.join(", ")}: the best there is not significantly better than every other.`),
    baseline === undefined
      ? "No experiment is marked `baseline: true`, so no value is shown relative to a baseline."
      : `In parentheses: change against ${baseline.name}, the baseline` +
        (directions.includes("closer") ? ` (for ${directionMark.closer} columns, change of the distance to the real value)` : "") +
        `; negative is better for ${directionMark.lower} and ${directionMark.closer}, positive for ${directionMark.higher}. n.s.: the comparison with the baseline finds no detectable difference.`
  ]
}

/** Every present metric but prompt following, which has a table of its own. */
export const metricTable = (results: StudyResults): ReportTable => {
  const present = presentColumns(results)
  const columns = present.filter((c) => !isPromptFollowing(c.id))
  const domains = [...new Set(results.strategies.map((s) => `${s.evaluation.amplitude.domain}, ${s.evaluation.amplitude.bins} bins`))]
  return {
    id: "metrics",
    caption: "Metrics of the generated images against the real reference set",
    header: ["strategy", ...columns.map((c) => headerOf(c, results))],
    rows: estimateRows(results, columns),
    notes: [
      ...readingNotes(results, columns),
      `Amplitude distances in the declared domain (${
        domains.join("; ")
      }); KL and JS in nats. FID_CLIP, KID_CLIP and CMMD are computed on the declared CLIP model's image embeddings, not on Inception features. n/a: not computable for this set.`,
      // Without a prompt-following table, why no strategy has the score is said here.
      ...(present.some((c) => isPromptFollowing(c.id)) ? [] : promptFollowingNotes(results, []))
    ]
  }
}

/** Prompt following per split (gap, top-1, top-k), with k and the chance levels; undefined when no strategy has it. */
export const promptFollowingTable = (results: StudyResults): ReportTable | undefined => {
  const columns = presentColumns(results).filter((c) => isPromptFollowing(c.id))
  if (columns.length === 0) return undefined
  return {
    id: "prompt-following",
    caption: "Prompt following: does each image match its own prompt better than the evaluation's other prompts?",
    header: ["strategy", ...columns.map((c) => headerOf(c, results))],
    rows: estimateRows(results, columns),
    notes: [...promptFollowingNotes(results, columns), ...readingNotes(results, columns)]
  }
}
