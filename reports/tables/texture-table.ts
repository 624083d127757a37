import { GLCM_PROPERTIES } from "../../framework/metrics/glcm.ts"
import { realSets, summariseGlcm } from "../glcm-summary.ts"
import { formatValue } from "../number-format.ts"
import { realColour, realLabel } from "../strategy-colours.ts"
import type { StudyResults } from "../study-results.ts"
import type { ReportTable, TableCell } from "./report-table.ts"

/** GLCM descriptors of each strategy's images next to the real set's; bold: closest to the real value. */
export const textureTable = (results: StudyResults): ReportTable => {
  const reals = realSets(results.strategies, realLabel)
  const realOf = (name: string) => reals.find((r) => r.strategies.includes(name))!
  const summaries = results.strategies.map((s) => summariseGlcm(s.evaluation.texture.generated))
  const gaps = GLCM_PROPERTIES.map((p) =>
    results.strategies.map((s, i) => {
      const value = summaries[i][p]
      const real = realOf(s.name).glcm[p]
      return value === undefined || real === undefined ? undefined : Math.abs(value - real)
    }))
  const best = gaps.map((column) => Math.min(...column.filter((g): g is number => g !== undefined)))
  const { levels, distances, angles } = results.strategies[0].evaluation.texture
  return {
    id: "texture",
    caption: "Texture: GLCM descriptors (mean over distances and angles)",
    header: ["set", ...GLCM_PROPERTIES],
    rows: [
      ...reals.map((r): ReadonlyArray<TableCell> => [{ text: r.label, colour: realColour }, ...GLCM_PROPERTIES.map((p) => ({ text: formatValue(r.glcm[p]) }))]),
      ...results.strategies.map((s, i): ReadonlyArray<TableCell> => [
        { text: s.name, colour: s.colour },
        ...GLCM_PROPERTIES.map((p, k) => ({
          text: formatValue(summaries[i][p]),
          ...(gaps[k][i] !== undefined && gaps[k][i] === best[k] && results.strategies.length > 1 ? { best: true } : {})
        }))
      ])
    ],
    notes: [
      `scikit-image graycomatrix/graycoprops conventions (symmetric, normed), ${levels} grey levels, distances ${distances.join(", ")} px, angles ${angles.join(", ")}°. Bold: closest to the real set.`
    ]
  }
}
