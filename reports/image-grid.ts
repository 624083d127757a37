import { join } from "node:path"
import { promptRows, promptsOf, type PromptRow } from "./prompt-rows.ts"
import { realColour, realLabel } from "./strategy-colours.ts"
import type { StudyResults } from "./study-results.ts"

/** An image of the grid: where its preview is, and where the report keeps its copy (under images/). */
export interface GridImage {
  readonly source: string
  /** Relative to the report folder, "/"-separated. */
  readonly target: string
  readonly caption: string
}

export interface ImageGrid {
  readonly columns: ReadonlyArray<{ readonly label: string; readonly colour: string }>
  readonly rows: ReadonlyArray<{ readonly prompt: PromptRow; readonly cells: ReadonlyArray<ReadonlyArray<GridImage>> }>
  readonly samplesPerCell: number
}

/** Folder-safe form of a strategy name (names are already [a-z0-9._-], this guards the rest). */
export const folderSafe = (name: string) => name.replace(/[^a-zA-Z0-9._-]/g, "_")

/**
 * Rows are prompts (seen, then unseen, each in declared order), columns the real reference and
 * each strategy. A real image has no prompt: row k shows reference preview k (cycling), captioned.
 * Wide studies get one sample per cell so the grid stays on a screen.
 */
export const imageGrid = (results: StudyResults): ImageGrid => {
  const samplesPerCell = results.strategies.length <= 4 ? 2 : 1
  const rows = [...promptRows(results.strategies)].sort((a, b) => (a.split === b.split ? a.index - b.index : a.split === "seen" ? -1 : 1))
  const reference = results.strategies[0]!.evaluation.previews.reference
  const referenceDir = results.strategies[0]!.evaluationDir
  return {
    samplesPerCell,
    columns: [{ label: realLabel, colour: realColour }, ...results.strategies.map((s) => ({ label: s.name, colour: s.colour }))],
    rows: rows.map((prompt, r) => {
      const real: ReadonlyArray<GridImage> = reference.length === 0
        ? []
        : [{
          source: join(referenceDir, reference[r % reference.length]!.file),
          target: `images/real/reference-${r % reference.length}.png`,
          caption: reference[r % reference.length]!.caption
        }]
      const cells = results.strategies.map((s, i) => {
        const text = promptsOf(s)[prompt.index]?.text
        return s.evaluation.previews.generated
          .filter((p) => p.prompt === text)
          .slice(0, samplesPerCell)
          .map((p, k): GridImage => ({
            source: join(s.evaluationDir, p.file),
            target: `images/${i}-${folderSafe(s.name)}/prompt-${prompt.index}-${k}.png`,
            caption: `${s.name}, seed ${p.seed}: ${p.prompt}`
          }))
      })
      return { prompt, cells: [real, ...cells] }
    })
  }
}
