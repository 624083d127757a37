import type { EstimateInterval } from "../../framework/metrics/evaluation-intervals.ts"
import { holmAdjusted } from "../../framework/metrics/multiple-testing.ts"
import type { Spread } from "../../framework/metrics/paired-amplitude.ts"
import type { PairedMetric } from "../../framework/steps/paired-evaluation.ts"
import { formatInterval, formatP, formatValue } from "../number-format.ts"
import { strategyLabel, type StudyResults } from "../study-results.ts"
import type { ReportTable, TableCell } from "./report-table.ts"

/**
 * The conditioned strategies' paired evaluation (evaluation.json's `paired`): each sample against the true
 * image of its scene — the mean of the per-pair distances and layout agreement with their intervals, the
 * layout agreement against shuffled scenes, their spread over the pairs, the comparison of conditioned
 * strategies scene by scene (statistics.json's `paired`), and, on label maps, the amplitude statistics
 * per class, generated vs true. Absent when no strategy is conditioned.
 */

const metrics: ReadonlyArray<{ readonly id: PairedMetric; readonly label: string; readonly higherIsBetter: boolean }> = [
  { id: "wasserstein", label: "Wasserstein-1", higherIsBetter: false },
  { id: "ks", label: "KS", higherIsBetter: false },
  { id: "layout", label: "layout agreement", higherIsBetter: true },
  { id: "shuffledLayout", label: "layout agreement, shuffled scenes", higherIsBetter: true },
  { id: "layoutGain", label: "layout gain over shuffled", higherIsBetter: true }
]

const spreadCell = (spread: Spread | undefined): TableCell =>
  spread === undefined ? { text: "–" } : { text: `${formatValue(spread.median)} (${formatValue(spread.q25)}–${formatValue(spread.q75)})` }

const meanCell = (estimate: EstimateInterval | undefined): TableCell =>
  estimate === undefined ? { text: "–" } : { text: formatValue(estimate.value), interval: formatInterval(estimate.low, estimate.high) }

const layoutNote =
  "Layout agreement: the correlation of log block means at several block sizes (1: the generated image follows the scene's layout; near 0: it ignores it). " +
  "Shuffled scenes: each sample against the true images of the other scenes of the conditions (their mean) — the level of a generator that ignores its condition. " +
  "Layout gain: own scene minus shuffled, pair by pair (the same sample against two truths); its interval above 0 says the samples follow their conditions."

export const pairedTables = (results: StudyResults): ReadonlyArray<ReportTable> => {
  const conditioned = results.strategies.flatMap((s) => (s.evaluation.paired === undefined ? [] : [{ strategy: s, paired: s.evaluation.paired }]))
  if (conditioned.length === 0) return []
  const level = Math.round(results.statistics.level * 100)
  const means: ReportTable = {
    id: "paired",
    caption: "Conditioned strategies: each sample against the true image of its scene",
    header: ["strategy", "pairs", ...metrics.map((m) => m.label)],
    rows: conditioned.map(({ paired, strategy }) => [
      { text: strategyLabel(strategy), colour: strategy.colour },
      { text: String(paired.pairs.length) },
      ...metrics.map((m) => meanCell(paired.intervals[m.id]))
    ]),
    notes: [
      `Mean over the pairs, in brackets its ${level} % confidence interval (bootstrap over noise draws, scenes kept as strata, BCa). ` +
      `Distances: lower is closer to the scene's truth. ${layoutNote}`
    ]
  }
  const spread: ReportTable = {
    id: "paired-spread",
    caption: "Conditioned strategies: the paired metrics' spread over the pairs",
    header: ["strategy", ...metrics.map((m) => m.label)],
    rows: conditioned.map(({ paired, strategy }) => [
      { text: strategyLabel(strategy), colour: strategy.colour },
      spreadCell(paired.wasserstein),
      spreadCell(paired.ks),
      spreadCell(paired.layout),
      spreadCell(paired.shuffledLayout),
      spreadCell(paired.layoutGain)
    ]),
    notes: ["Median over the pairs, in brackets the quartiles."]
  }
  const comparisons = (results.statistics.paired ?? []).map((c): ReportTable => {
    const shown = metrics.filter((m) => c.differences[m.id] !== undefined)
    const adjusted = holmAdjusted(shown.map((m) => c.differences[m.id]!.p))
    return {
      id: `paired-compare-${c.a}-${c.b}`,
      caption: `${c.a} against ${c.b}, pair by pair (same scene, same seed)`,
      header: ["metric", "difference (a − b)", "p", "p (Holm)", "verdict"],
      rows: shown.map((m, k) => {
        const d = c.differences[m.id]!
        const real = adjusted[k]! < 1 - results.statistics.level
        const better = (d.difference > 0) === m.higherIsBetter
        const verdict = !real ? "unclear" : better ? "better" : "worse"
        return [
          { text: m.label },
          { text: formatValue(d.difference), interval: formatInterval(d.low, d.high) },
          { text: formatP(d.p) },
          { text: formatP(adjusted[k]) },
          { text: !real ? "no detectable difference" : `${c.a} ${verdict}`, verdict }
        ]
      }),
      notes: [
        `${c.matched} pairs present in both, over ${c.draws} noise draws. Difference of the means, in brackets its ${level} % interval (paired bootstrap over noise draws, BCa); ` +
        `p: paired permutation test (swapping the two strategies' samples of a noise draw${
          c.exact ? ", every swap enumerated" : ""
        }), Holm-corrected over the metrics.`
      ]
    }
  })
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
  return [means, spread, ...comparisons, ...classTables]
}
