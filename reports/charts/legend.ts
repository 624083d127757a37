import { escapeXml, px, smallFontSize, svgText } from "./svg.ts"
import { fitName, textWidth } from "./text-width.ts"

/** One entry of a legend: how its series is drawn. */
export interface LegendItem {
  readonly label: string
  readonly colour: string
  readonly shape: "line" | "box"
  readonly dash?: string
  readonly lineWidth?: number
}

const swatch = 18
const swatchGap = 5
const itemGap = 14
const rowHeight = 17

/**
 * Items left to right, wrapping to a new row when the next would pass `maxWidth`; a label longer
 * than a whole row is shortened in the middle (its full text stays in a <title> tooltip).
 */
export const legend = (items: ReadonlyArray<LegendItem>, x0: number, y0: number, maxWidth: number): { svg: string; height: number } => {
  if (items.length === 0) return { svg: "", height: 0 }
  const parts: Array<string> = []
  let x = 0
  let row = 0
  for (const item of items) {
    const label = fitName(item.label, smallFontSize, maxWidth - swatch - swatchGap)
    const width = swatch + swatchGap + textWidth(label, smallFontSize)
    if (x > 0 && x + width > maxWidth) {
      row += 1
      x = 0
    }
    const left = x0 + x
    const middle = y0 + row * rowHeight + rowHeight / 2
    const mark = item.shape === "box"
      ? `<rect x="${px(left + 3)}" y="${px(middle - 5)}" width="12" height="10" fill="${item.colour}"/>`
      : `<line x1="${px(left)}" y1="${px(middle)}" x2="${px(left + swatch)}" y2="${px(middle)}" stroke="${item.colour}" ` +
        `stroke-width="${item.lineWidth ?? 2}"${item.dash === undefined ? "" : ` stroke-dasharray="${item.dash}"`}/>`
    parts.push(
      `<g class="legend-item"><title>${escapeXml(item.label)}</title>${mark}` +
        svgText(left + swatch + swatchGap, middle + smallFontSize * 0.35, label, { size: smallFontSize, className: "legend-label" }) +
        `</g>`
    )
    x += width + itemGap
  }
  return { svg: `<g class="legend">${parts.join("")}</g>`, height: (row + 1) * rowHeight }
}
