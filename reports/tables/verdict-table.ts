import type { StrategyComparisonReport, VerdictLine } from "../../framework/metrics/study-statistics.ts"
import { directionMark } from "../metric-columns.ts"
import { formatInterval, formatP, formatValue } from "../number-format.ts"
import { estimateOf, type StudyResults } from "../study-results.ts"
import type { ReportTable, TableCell } from "./report-table.ts"

const testText = (c: StrategyComparisonReport): string => {
  if (c.test === "welch") {
    return `Welch's t test over training seeds (${c.units![0]} and ${c.units![1]} runs); a side that ran once enters with its bootstrap variance`
  }
  const permutations = c.permutations!
  const arrangements = permutations.exact ? `all ${permutations.count} arrangements (exact)` : `${permutations.count} random arrangements`
  return c.test === "paired permutation"
    ? `paired permutation test over ${
      c.units![0]
    } noise draws (same prompts and sampling seeds; each draw's two images swapped as a pair), ${arrangements}; interval: paired bootstrap (BCa)`
    : `unpaired permutation test over ${c.units![0]} + ${
      c.units![1]
    } noise draws (the samples do not pair up), ${arrangements}; interval: independent bootstraps (BCa)`
}

const verdictText = (c: StrategyComparisonReport, line: VerdictLine): TableCell => {
  switch (line.verdict) {
    case "better":
      return { text: `${c.a} better`, verdict: "better" }
    case "worse":
      return { text: `${c.a} worse`, verdict: "worse" }
    case "no detectable difference":
      return { text: "no detectable difference", verdict: "unclear" }
    case "not tested":
      return { text: "not tested" }
  }
}

/** One declared comparison (or one against the baseline): per metric, both values, the difference with its interval, p-values and the verdict. */
export const verdictTable = (results: StudyResults, c: StrategyComparisonReport): ReportTable => {
  const level = Math.round(results.statistics.level * 100)
  const a = results.strategies.find((s) => s.name === c.a)
  const b = results.strategies.find((s) => s.name === c.b)
  const valueCell = (side: typeof a, id: string): TableCell => {
    const estimate = side === undefined ? undefined : estimateOf(side, id)
    const interval = formatInterval(estimate?.low, estimate?.high)
    return { text: formatValue(estimate?.value), ...(interval === "" ? {} : { interval }) }
  }
  return {
    id: `verdicts-${c.a}-vs-${c.b}`,
    caption: `${c.a} against ${c.b}${c.why === "baseline" ? " (the baseline)" : " (declared)"}`,
    header: ["metric", c.a, c.b, `difference (${c.a} − ${c.b})`, `${level} % interval`, "p", "p (Holm)", "verdict"],
    rows: c.lines.map((line): ReadonlyArray<TableCell> => [
      { text: `${line.label} ${directionMark[line.direction]}` },
      valueCell(a, line.id),
      valueCell(b, line.id),
      { text: formatValue(line.difference) },
      { text: formatInterval(line.low, line.high) || "–" },
      { text: formatP(line.p) },
      { text: formatP(line.pAdjusted) },
      verdictText(c, line)
    ]),
    notes: [
      `Test: ${testText(c)}. Holm's correction across the ${c.lines.filter((l) => l.verdict !== "not tested").length} metrics of this comparison; ` +
      `a difference is real when its adjusted p is at most ${formatP(1 - results.statistics.level)}` +
      (c.strictestThreshold === undefined ? "." : ` (the smallest p must reach ${formatP(c.strictestThreshold)}).`),
      ...(c.lines.some((l) => l.direction === "closer")
        ? [`For ${directionMark.closer} metrics the difference is that of the distances to the real value (negative: ${c.a} closer).`]
        : []),
      ...c.notes
    ]
  }
}

/** Strategies trained with several seeds: each metric's spread between seeds and every seed's value. */
export const replicatesTable = (results: StudyResults, columns: ReadonlyArray<{ readonly id: string; readonly label: string }>): ReportTable | undefined => {
  const replicated = results.strategies.filter((s) => s.replicates.length > 1)
  if (replicated.length === 0) return undefined
  return {
    id: "replicates",
    caption: "Spread between training seeds",
    header: ["strategy", ...columns.map((c) => c.label)],
    rows: replicated.map((s): ReadonlyArray<TableCell> => [
      { text: `${s.name} (${s.replicates.length} seeds)`, colour: s.colour },
      ...columns.map((column): TableCell => {
        const estimate = estimateOf(s, column.id)
        return estimate?.seedSpread === undefined
          ? { text: "n/a" }
          : { text: `sd ${formatValue(estimate.seedSpread)}`, interval: `(${estimate.replicateValues!.map(formatValue).join(", ")})` }
      })
    ]),
    notes: [
      "Standard deviation of each metric over the training seeds, then each seed's value in replicate order. It includes each run's own sampling noise; the metric table's interval for these strategies is that of the mean over the seeds."
    ]
  }
}
