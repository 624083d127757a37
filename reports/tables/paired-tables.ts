import type { Spread } from "../../framework/metrics/paired-amplitude.ts"
import { formatValue } from "../number-format.ts"
import { strategyLabel, type StudyResults } from "../study-results.ts"
import type { ReportTable, TableCell } from "./report-table.ts"

/**
 * The conditioned strategies' paired evaluation (evaluation.json's `paired`): each sample against the true
 * image of its scene — the per-pair distances' and layout agreement's spread, and, on label maps, the
 * amplitude statistics per class, generated vs true. Absent when no strategy is conditioned.
 */

const spreadCell = (spread: Spread): TableCell => ({ text: `${formatValue(spread.median)} (${formatValue(spread.q25)}–${formatValue(spread.q75)})` })

export const pairedTables = (results: StudyResults): ReadonlyArray<ReportTable> => {
  const conditioned = results.strategies.flatMap((s) => (s.evaluation.paired === undefined ? [] : [{ strategy: s, paired: s.evaluation.paired }]))
  if (conditioned.length === 0) return []
  const metrics: ReportTable = {
    id: "paired",
    caption: "Conditioned strategies: each sample against the true image of its scene",
    header: ["strategy", "pairs", "Wasserstein-1", "KS", "layout agreement"],
    rows: conditioned.map(({ paired, strategy }) => [
      { text: strategyLabel(strategy), colour: strategy.colour },
      { text: String(paired.pairs.length) },
      spreadCell(paired.wasserstein),
      spreadCell(paired.ks),
      spreadCell(paired.layout)
    ]),
    notes: [
      "Median over the pairs, in brackets the quartiles. Distances: lower is closer to the scene's truth. Layout agreement: the correlation of log block means " +
      "at several block sizes (1: the generated image follows the scene's layout; near 0: it ignores it)."
    ]
  }
  const classTables = conditioned.flatMap(({ paired, strategy }): Array<ReportTable> =>
    paired.classes === undefined ? [] : [{
      id: `paired-classes-${strategy.name}`,
      caption: `${strategyLabel(strategy)}: amplitude per class of the label maps, generated / true`,
      header: ["class", "pixels", "mean", "CV", "ENL"],
      rows: paired.classes.filter((c) => c.truth.pixels > 0).map((c) => [
        { text: c.name },
        { text: String(c.truth.pixels) },
        { text: `${formatValue(c.generated.mean)} / ${formatValue(c.truth.mean)}` },
        { text: `${formatValue(c.generated.cv)} / ${formatValue(c.truth.cv)}` },
        { text: `${formatValue(c.generated.enl)} / ${formatValue(c.truth.enl)}` }
      ]),
      notes: ["Inside each class's regions of the scenes' label maps, over every pair; classes absent from the scenes are left out."]
    }]
  )
  return [metrics, ...classTables]
}
