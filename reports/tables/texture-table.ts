import { GLCM_PROPERTIES } from "../../framework/metrics/glcm.ts"
import { glcmEstimate } from "../../framework/metrics/metric-catalog.ts"
import { realSets } from "../glcm-summary.ts"
import { formatInterval, formatValue } from "../number-format.ts"
import { realColour, realLabel } from "../strategy-colours.ts"
import { estimateOf, isSignificantBest, strategyLabel, type StudyResults } from "../study-results.ts"
import type { ReportTable, TableCell } from "./report-table.ts"

/** GLCM descriptors of each strategy's images (with intervals) next to the real set's; bold: closest to the real value, significantly. */
export const textureTable = (results: StudyResults): ReportTable => {
  const reals = realSets(results.strategies, realLabel)
  const { levels, distances, angles } = results.strategies[0]!.evaluation.texture
  return {
    id: "texture",
    caption: "Texture: GLCM descriptors (mean over distances and angles)",
    header: ["set", ...GLCM_PROPERTIES],
    rows: [
      ...reals.map((r): ReadonlyArray<TableCell> => [{ text: r.label, colour: realColour }, ...GLCM_PROPERTIES.map((p) => ({ text: formatValue(r.glcm[p]) }))]),
      ...results.strategies.map((s): ReadonlyArray<TableCell> => [
        { text: strategyLabel(s), colour: s.colour },
        ...GLCM_PROPERTIES.map((p): TableCell => {
          const { id } = glcmEstimate(p)
          const estimate = estimateOf(s, id)
          const interval = formatInterval(estimate?.low, estimate?.high)
          return {
            text: formatValue(estimate?.value),
            ...(interval === "" ? {} : { interval }),
            ...(isSignificantBest(results, s, id) ? { best: true } : {})
          }
        })
      ])
    ],
    notes: [
      `scikit-image graycomatrix/graycoprops conventions (symmetric, normed), ${levels} grey levels, distances ${distances.join(", ")} px, angles ${
        angles.join(", ")
      }°. ` +
      `In brackets: ${
        Math.round(results.statistics.level * 100)
      } % confidence intervals (the real set is fixed). Bold: closest to the real set and significantly closer than every other strategy.`
    ]
  }
}
