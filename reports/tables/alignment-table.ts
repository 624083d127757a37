import { formatValue } from "../number-format.ts"
import { promptRows, promptsOf } from "../prompt-rows.ts"
import type { StudyResults } from "../study-results.ts"
import type { ReportTable, TableCell } from "./report-table.ts"

/** CLIP alignment per prompt and strategy; bold: the best strategy on that prompt. */
export const alignmentTable = (results: StudyResults): ReportTable | undefined => {
  const scored = results.strategies.filter((s) => s.evaluation.alignment !== undefined)
  if (scored.length === 0) return undefined
  const rows = promptRows(results.strategies)
  const scoreOf = (strategyIndex: number, row: number): number | undefined => {
    const strategy = results.strategies[strategyIndex]
    const text = promptsOf(strategy)[row]?.text
    const found = strategy.evaluation.alignment?.prompts.find((p) => p.prompt === text)
    return typeof found?.score === "number" ? found.score : undefined
  }
  const clips = [...new Set(scored.map((s) => s.evaluation.alignment!.clip))]
  return {
    id: "alignment",
    caption: "Prompt alignment per prompt: CLIP score 100 · cos(image, text), mean over the prompt's samples",
    header: ["prompt", "split", ...results.strategies.map((s) => s.name)],
    rows: rows.map((row): ReadonlyArray<TableCell> => {
      const scores = results.strategies.map((_, i) => scoreOf(i, row.index))
      const best = Math.max(...scores.filter((v): v is number => v !== undefined))
      return [
        { text: row.variants.length === 0 ? row.text : `${row.text} (also: ${row.variants.join("; ")})` },
        { text: row.split },
        ...scores.map((score) => ({ text: formatValue(score), ...(score !== undefined && score === best && scored.length > 1 ? { best: true } : {}) }))
      ]
    }),
    notes: [
      `Scored by ${clips.join(", ")}; the learned token reads as "SAR" to the scorer. Seen: concepts in the training captions; unseen: withheld concepts.`
    ]
  }
}
