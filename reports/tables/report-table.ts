/**
 * A table as both report formats print it. Cells carry their text and marks (best value, interval,
 * change against the baseline, link, code); the HTML and Markdown renderers only choose the
 * markup, so the two formats hold the same numbers.
 */
export interface TableCell {
  readonly text: string
  /** The best value of its column (or row) and significantly better than every other: bold. */
  readonly best?: boolean
  /** The value's confidence interval, printed after it: "[0.168, 0.181]". */
  readonly interval?: string
  /**
   * Change against the baseline, printed after the value in parentheses; "unclear" when the
   * comparison with the baseline finds no detectable difference (printed with "n.s.").
   */
  readonly change?: { readonly text: string; readonly tone: "better" | "worse" | "same" | "unclear" }
  /** A comparison's outcome, coloured in HTML. */
  readonly verdict?: "better" | "worse" | "unclear"
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

/** The change's text as printed, "n.s." marking a change the comparison does not find real. */
export const changeText = (change: NonNullable<TableCell["change"]>): string => change.tone === "unclear" ? `${change.text}, n.s.` : change.text

/** The text a cell shows, marks included: what both formats agree on. */
export const cellText = (cell: TableCell): string =>
  [cell.text, cell.interval ?? "", cell.change === undefined ? "" : `(${changeText(cell.change)})`].filter((t) => t !== "").join(" ")

export const plainCell = (text: string): TableCell => ({ text })
