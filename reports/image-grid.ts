import { join } from "node:path"
import type { PromptReading } from "../framework/steps/evaluation-result.ts"
import { promptRows, promptsOf, type PromptRow } from "./prompt-rows.ts"
import { generatedReading, referenceReading } from "./sample-readings.ts"
import { realColour, realLabel } from "./strategy-colours.ts"
import { thumbnailSide } from "./thumbnails.ts"
import type { StrategyResult, StudyResults } from "./study-results.ts"

/** An image of the grid: where its preview is, and where the report keeps its copy (under images/). */
export interface GridImage {
  readonly source: string
  /** Relative to the report folder, "/"-separated. */
  readonly target: string
  readonly caption: string
  /** A generated image's sampling seed. */
  readonly seed?: number
}

/** A cell: its images and its line of the row's reading (sample-readings.ts). */
export interface GridCell {
  readonly images: ReadonlyArray<GridImage>
  readonly reading: string
}

export interface ImageGrid {
  readonly columns: ReadonlyArray<{ readonly label: string; readonly colour: string }>
  readonly rows: ReadonlyArray<{ readonly prompt: PromptRow; readonly seeds: ReadonlyArray<number>; readonly cells: ReadonlyArray<GridCell> }>
  readonly samplesPerCell: number
}

/** Folder-safe form of a strategy name (names are already [a-z0-9._-], this guards the rest). */
export const folderSafe = (name: string) => name.replace(/[^a-zA-Z0-9._-]/g, "_")

/** A strategy's reading of row `row` (rows line up by position; prompt-rows.ts). */
const readingOf = (strategy: StrategyResult, row: number): PromptReading | undefined => {
  const text = promptsOf(strategy)[row]?.text
  return strategy.evaluation.promptReadings.find((r) => r.prompt === text)
}

/** A prompt's previews, one per seed in ascending seed order, then each seed's next sample, and so on. */
const bySeed = <P extends { readonly seed: number }>(previews: ReadonlyArray<P>): ReadonlyArray<P> => {
  const count = new Map<number, number>()
  const ranked = previews.map((p) => {
    const nth = count.get(p.seed) ?? 0
    count.set(p.seed, nth + 1)
    return { p, nth }
  })
  return ranked.sort((a, b) => a.nth - b.nth || a.p.seed - b.p.seed).map((r) => r.p)
}

/**
 * Rows are prompts (seen, then unseen, each in declared order), columns the real reference and
 * each strategy. A strategy's cell shows the prompt's samples of its first seeds; the real cell,
 * reference scenes captioned as the prompt's scene (the evaluate step picked them). Wide studies
 * show fewer seeds per cell so the grid stays on a screen.
 */
export const imageGrid = (results: StudyResults): ImageGrid => {
  const samplesPerCell = results.strategies.length <= 6 ? 4 : 2
  const rows = [...promptRows(results.strategies)].sort((a, b) => (a.split === b.split ? a.index - b.index : a.split === "seen" ? -1 : 1))
  return {
    samplesPerCell,
    columns: [{ label: realLabel, colour: realColour }, ...results.strategies.map((s) => ({ label: s.name, colour: s.colour }))],
    rows: rows.map((prompt) => {
      // The real cell from the first strategy that read this row (all read the same reference set).
      const withReading = results.strategies.find((s) => readingOf(s, prompt.index) !== undefined)
      const reading = withReading === undefined ? undefined : readingOf(withReading, prompt.index)!
      const real: GridCell = withReading === undefined || reading === undefined
        ? { images: [], reading: "" }
        : {
          images: reading.reference.previews.slice(0, samplesPerCell).map((index) => {
            const preview = withReading.evaluation.previews.reference[index]!
            return {
              source: join(withReading.evaluationDir, preview.file),
              target: `images/real/${folderSafe(withReading.name)}-${preview.file.replace(/^previews\//, "")}`,
              caption: preview.caption
            }
          }),
          reading: referenceReading(reading)
        }
      const cells = results.strategies.map((s, i): GridCell => {
        const text = promptsOf(s)[prompt.index]?.text
        const own = readingOf(s, prompt.index)
        return {
          images: bySeed(s.evaluation.previews.generated.filter((p) => p.prompt === text))
            .slice(0, samplesPerCell)
            .map((p, k): GridImage => ({
              source: join(s.evaluationDir, p.file),
              target: `images/${i}-${folderSafe(s.name)}/prompt-${prompt.index}-${k}.png`,
              caption: `${s.name}, seed ${p.seed}: ${p.prompt}`,
              seed: p.seed
            })),
          reading: own === undefined ? "" : generatedReading(own, s.evaluation.promptReadings)
        }
      })
      const seeds = [...new Set(cells.flatMap((c) => c.images.flatMap((i) => (i.seed === undefined ? [] : [i.seed]))))]
      return { prompt, seeds, cells: [real, ...cells] }
    })
  }
}

/** What the grid shows, above it in both formats. */
export const gridNote = (grid: ImageGrid): string =>
  `Rows: prompts, seen then unseen; columns: real scenes of the prompt's class from the reference set, then each strategy's samples of the prompt ` +
  `(its first ${grid.samplesPerCell} sampling seeds, the same in every column). ` +
  `Images larger than ${thumbnailSide} px are block-averaged to fit, which also averages speckle; the metrics use the full images.`
