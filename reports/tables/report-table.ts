/**
 * A table as both report formats print it. Cells carry their text and marks (best value, change
 * against the baseline, link, code); the HTML and Markdown renderers only choose the markup, so
 * the two formats hold the same numbers.
 */
export interface TableCell {
  readonly text: string
  /** The best value of its column (or row, for per-prompt scores). */
  readonly best?: boolean
  /** Change against the baseline, printed after the value in parentheses. */
  readonly change?: { readonly text: string; readonly tone: "better" | "worse" | "same" }
  readonly link?: string
  /** Identifiers (cache keys, run ids) in a fixed-width font. */
  readonly code?: boolean
  /** A strategy's colour, shown as a swatch in HTML (it adds no text). */
  readonly colour?: string
}

export interface ReportTable {
  /** Stable id: the HTML table's data-table attribute. */
  readonly id: string
  readonly caption: string
  readonly header: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<TableCell>>
  /** Printed under the table in both formats. */
  readonly notes: ReadonlyArray<string>
}

/** The text a cell shows, marks included: what both formats agree on. */
export const cellText = (cell: TableCell): string => (cell.change === undefined ? cell.text : `${cell.text} (${cell.change.text})`)

export const plainCell = (text: string): TableCell => ({ text })
