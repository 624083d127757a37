import type { PromptReading } from "../framework/steps/evaluation-result.ts"
import { formatValue } from "./number-format.ts"

/**
 * The sample grid's reading line, cell by cell, from the evaluate step's promptReadings: the text
 * only; every number was computed by the evaluation (framework/steps/prompt-readings.ts).
 */

/** What a reading names a prompt by: the scene its text names, else its text. */
const nameOf = (reading: PromptReading) => reading.scene ?? `“${reading.prompt}”`

/** "62 %", kept on one line where the cell wraps. */
const percent = (share: number) => `${Math.round(share * 100)}\u00a0%`

/**
 * A strategy's cell: "top-1 harbour 62 % ✓ · ENL 1.93" — the prompt its samples put first most often
 * (several when tied), its share of their first places, ✓ when it is the row's own prompt; then
 * the samples' mean ENL. Without prompt following, the ENL alone.
 */
export const generatedReading = (reading: PromptReading, readings: ReadonlyArray<PromptReading>): string => {
  const enl = `ENL ${formatValue(reading.enl)}`
  const retrieved = reading.retrieved
  if (retrieved === undefined || retrieved.length === 0) return enl
  const top = retrieved.filter((r) => r.share === retrieved[0]!.share)
  const names = top.map((r) => {
    const other = readings.find((x) => x.promptIndex === r.promptIndex)
    return other === undefined ? `prompt ${r.promptIndex}` : nameOf(other)
  })
  const own = top.some((r) => r.promptIndex === reading.promptIndex)
  return `top-1 ${names.join(" / ")} ${percent(top[0]!.share)}${own ? " ✓" : ""} · ${enl}`
}

/** The real column's cell: "harbour: 12 scenes · ENL 0.41", or why it shows no scene. */
export const referenceReading = (reading: PromptReading): string => {
  if (reading.scene === undefined) return "the prompt names no scene"
  const { enl, scenes } = reading.reference
  if (scenes === 0) return `no ${reading.scene} scene in the reference set`
  return `${reading.scene}: ${scenes} scene${scenes === 1 ? "" : "s"} · ENL ${formatValue(enl)}`
}

export const readingsNote =
  "Under each row: in the real column, how many reference scenes are captioned as the prompt's scene (the words after “image of” up to “with”, “near”, “crossed by”…) " +
  "and their mean ENL (the cell shows the first few); in each strategy's column, the prompt its samples of this row retrieve first most often among the evaluation's " +
  "prompts by the prompt-following judge's CLIP score (named by its scene; ✓: the row's own prompt), with its share of their first places (ties split), and the samples' mean ENL " +
  "(per-image ENL averaged). Both over all the prompt's samples, not only the seeds shown."
