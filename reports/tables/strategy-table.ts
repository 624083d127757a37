import { textEncoderTreatments } from "../../framework/declaration/components.ts"
import { describeTreatment } from "../../framework/declaration/treatment.ts"
import type { StudyResults } from "../study-results.ts"
import type { ReportTable, TableCell } from "./report-table.ts"

/** The seed study's strategy table, generated: what each experiment trains, component by component. */
export const strategyTable = (results: StudyResults): ReportTable => {
  const encoders = results.strategies.map((s) => textEncoderTreatments(s.strategy.components, s.strategy.base.family))
  const encoderColumns = Math.max(...encoders.map((e) => e.length))
  const encoderHeaders = encoderColumns === 1 ? ["text encoder"] : Array.from({ length: encoderColumns }, (_, i) => `text encoder ${i + 1}`)
  const rows = results.strategies.map((s, i): ReadonlyArray<TableCell> => {
    const { components } = s.strategy
    const token = components.token
    return [
      { text: s.strategy.baseline ? `${s.name} (baseline)` : s.name, colour: s.colour },
      { text: describeTreatment(components.unet) },
      { text: describeTreatment(components.vae) },
      ...Array.from({ length: encoderColumns }, (_, k) => ({ text: encoders[i]![k] === undefined ? "–" : describeTreatment(encoders[i]![k][1]) })),
      {
        text: token === undefined
          ? "–"
          : `${token.token} (from “${token.init}”, ${token.vectors} vector${token.vectors === 1 ? "" : "s"})`
      }
    ]
  })
  const descriptions = results.strategies.flatMap((s) => (s.strategy.description === undefined ? [] : [`${s.name}: ${s.strategy.description}`]))
  return {
    id: "strategies",
    caption: "Strategies: what each experiment trains",
    header: ["strategy", "UNet", "VAE", ...encoderHeaders, "learned token"],
    rows,
    notes: [
      "frozen: loaded as is, never trained; full: every weight trains; LoRA r=k: rank-k adapters on the default projections.",
      ...descriptions
    ]
  }
}
