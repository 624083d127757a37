import { promptAlignmentEstimate } from "../../framework/metrics/metric-catalog.ts"
import { formatInterval, formatValue } from "../number-format.ts"
import { promptRows, promptsOf } from "../prompt-rows.ts"
import { estimateOf, isSignificantBest, type StrategyResult, type StudyResults } from "../study-results.ts"
import type { ReportTable, TableCell } from "./report-table.ts"

/** The estimate id of a strategy's prompt in row `row` (rows line up by position; prompt-rows.ts). */
const promptEstimateId = (strategy: StrategyResult, row: number): string | undefined => {
  const text = promptsOf(strategy)[row]?.text
  const found = strategy.evaluation.alignment?.prompts.find((p) => p.prompt === text)
  return found === undefined ? undefined : promptAlignmentEstimate(found.promptIndex).id
}

/** CLIP alignment per prompt and strategy, with intervals; bold: the significantly best strategy on that prompt. */
export const alignmentTable = (results: StudyResults): ReportTable | undefined => {
  const scored = results.strategies.filter((s) => s.evaluation.alignment !== undefined)
  if (scored.length === 0) return undefined
  const rows = promptRows(results.strategies)
  const clips = [...new Set(scored.map((s) => s.evaluation.alignment!.clip))]
  return {
    id: "alignment",
    caption: "Prompt alignment per prompt: CLIP score 100 · cos(image, text), mean over the prompt's samples",
    header: ["prompt", "split", ...results.strategies.map((s) => s.name)],
    rows: rows.map((row): ReadonlyArray<TableCell> => [
      { text: row.variants.length === 0 ? row.text : `${row.text} (also: ${row.variants.join("; ")})` },
      { text: row.split },
      ...results.strategies.map((s): TableCell => {
        const id = promptEstimateId(s, row.index)
        const estimate = id === undefined ? undefined : estimateOf(s, id)
        const interval = formatInterval(estimate?.low, estimate?.high)
        return {
          text: formatValue(estimate?.value),
          ...(interval === "" ? {} : { interval }),
          ...(id !== undefined && isSignificantBest(results, s, id) ? { best: true } : {})
        }
      })
    ]),
    notes: [
      `Scored by ${clips.join(", ")}; the learned token reads as "SAR" to the scorer. Seen: concepts in the training captions; unseen: withheld concepts. ` +
      `In brackets: ${Math.round(results.statistics.level * 100)} % confidence intervals. Bold: significantly better than every other strategy on that prompt.`
    ]
  }
}
