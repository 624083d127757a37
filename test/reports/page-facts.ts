/** What the tests read off a rendered report page in the browser. */
import { readFile } from "node:fs/promises"
import type { Page } from "playwright-core"

export interface Box {
  readonly left: number
  readonly top: number
  readonly right: number
  readonly bottom: number
}

export interface ChartFacts {
  readonly id: string
  readonly box: Box
  /** Data marks (lines, bars) drawn with a visible extent. */
  readonly visibleMarks: number
  readonly texts: ReadonlyArray<{ readonly text: string; readonly fontSize: number; readonly bold: boolean; readonly width: number; readonly box: Box }>
  /** Colour of each data series, as the browser computes it. */
  readonly series: ReadonlyArray<{ readonly name: string; readonly colour: string }>
  /** Shaded intervals drawn with a visible area, by series. */
  readonly bands: ReadonlyArray<{ readonly name: string; readonly colour: string }>
  /** Error bars drawn with a visible extent, by series. */
  readonly errorBars: ReadonlyArray<string>
}

export interface PageFacts {
  readonly images: ReadonlyArray<{ readonly complete: boolean; readonly naturalWidth: number; readonly alt: string; readonly dataUri: boolean }>
  readonly charts: ReadonlyArray<ChartFacts>
  readonly tables: ReadonlyArray<
    { readonly id: string; readonly caption: string; readonly header: ReadonlyArray<string>; readonly rows: ReadonlyArray<ReadonlyArray<string>> }
  >
  /** Strategy name → colour of its swatch in the strategy table. */
  readonly swatches: ReadonlyArray<{ readonly name: string; readonly colour: string }>
  /** Best-marked cells of the metric table: [row, column] in body coordinates (column 0 = strategy). */
  readonly bestCells: ReadonlyArray<readonly [number, number]>
  /** Per table id: the body cells (outside the first column) the browser draws bold. */
  readonly boldCells: Readonly<Record<string, ReadonlyArray<readonly [number, number]>>>
  readonly changeTones: ReadonlyArray<{ readonly row: number; readonly column: number; readonly tone: string; readonly text: string }>
  /** The sample grid's rows, top to bottom: prompt index, label, each cell's image alts (real column first), the reading line's cells. */
  readonly grid: ReadonlyArray<
    { readonly index: number; readonly label: string; readonly cells: ReadonlyArray<ReadonlyArray<string>>; readonly readings: ReadonlyArray<string> }
  >
}

/**
 * Runs page-facts.browser.js in the page. It is plain JavaScript read at run time: it uses the
 * DOM, which the project's TypeScript (Node types only) does not describe.
 */
export const pageFacts = async (page: Page): Promise<PageFacts> =>
  (await page.evaluate(await readFile(new URL("./page-facts.browser.js", import.meta.url), "utf8"))) as PageFacts

const intersection = (a: Box, b: Box) =>
  Math.max(0, Math.min(a.right, b.right) - Math.max(a.left, b.left)) * Math.max(0, Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top))

/** Pairs of labels of a chart that overlap by more than a sliver, and labels that leave the chart. */
export const labelProblems = (chart: ChartFacts): ReadonlyArray<string> => {
  const problems: Array<string> = []
  const texts = chart.texts.filter((t) => t.text.trim() !== "")
  for (let i = 0; i < texts.length; i++) {
    for (let j = i + 1; j < texts.length; j++) {
      if (intersection(texts[i]!.box, texts[j]!.box) > 1) problems.push(`${chart.id}: "${texts[i]!.text}" overlaps "${texts[j]!.text}"`)
    }
    const { box } = texts[i]!
    if (box.left < chart.box.left - 0.5 || box.right > chart.box.right + 0.5 || box.top < chart.box.top - 0.5 || box.bottom > chart.box.bottom + 0.5) {
      problems.push(`${chart.id}: "${texts[i]!.text}" leaves the chart`)
    }
  }
  return problems
}
