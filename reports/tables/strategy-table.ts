import { textEncoderTreatments } from "../../framework/declaration/components.ts"
import { describeTreatment } from "../../framework/declaration/treatment.ts"
import type { StudyResults } from "../study-results.ts"
import type { ReportTable, TableCell } from "./report-table.ts"

/** What an external evaluation lacks, so that no number of the report is read as more than it is. */
const externalNote =
  "External evaluations have no training: no training curves, run facts or replicates over training seeds. They are compared over their own images: " +
  "paired by noise draw only where their prompts and seeds match the other side's (otherwise unpaired permutation tests), against a replicated strategy " +
  "with their bootstrap standard error in place of a spread between seeds, and only with strategies judged against the same reference images."

/** The seed study's strategy table, generated: what each experiment trains, component by component. */
export const strategyTable = (results: StudyResults): ReportTable => {
  const trained = results.strategies.filter((s) => s.strategy.external === undefined)
  const encoders = results.strategies.map((
    s
  ) => (s.strategy.external === undefined ? textEncoderTreatments(s.strategy.components, s.strategy.base.family) : []))
  const encoderColumns = Math.max(1, ...encoders.map((e) => e.length))
  const encoderHeaders = encoderColumns === 1 ? ["text encoder"] : Array.from({ length: encoderColumns }, (_, i) => `text encoder ${i + 1}`)
  const rows = results.strategies.map((s, i): ReadonlyArray<TableCell> => {
    if (s.strategy.external !== undefined) {
      return [{ text: `${s.name} (external)`, colour: s.colour }, ...Array.from({ length: 3 + encoderColumns }, () => ({ text: "–" }))]
    }
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
  const descriptions = trained.flatMap((s) => (s.strategy.description === undefined ? [] : [`${s.name}: ${s.strategy.description}`]))
  const externals = results.strategies.filter((s) => s.strategy.external !== undefined)
  return {
    id: "strategies",
    caption: "Strategies: what each experiment trains",
    header: ["strategy", "UNet", "VAE", ...encoderHeaders, "learned token"],
    rows,
    notes: [
      "frozen: loaded as is, never trained; full: every weight trains; LoRA r=k: rank-k adapters on the default projections.",
      ...descriptions,
      ...externals.map((s) => `${s.name} (external): evaluated by \`sardine evaluate\`, from ${s.strategy.external}.`),
      ...(externals.length === 0 ? [] : [externalNote])
    ]
  }
}
