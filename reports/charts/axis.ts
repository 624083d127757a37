import type { Scale } from "./scale.ts"
import { axisColour, fontSize, gridColour, px, svgText } from "./svg.ts"
import { fitText, textWidth } from "./text-width.ts"
import { tickLabels } from "./tick-format.ts"

/** Ticks with their labels. */
export interface AxisTicks {
  readonly values: ReadonlyArray<number>
  readonly labels: ReadonlyArray<string>
}

/** Smallest free space between two neighbouring tick labels, in pixels. */
const labelGap = 6
const tickLength = 4

/**
 * As many ticks as fit: starting from one per `spacing` pixels, fewer until neighbouring labels
 * (of extent `extentOf(label)` along the axis, centred on their tick) no longer touch.
 */
export const fittedTicks = (scale: Scale, extentOf: (label: string) => number, spacing: number): AxisTicks => {
  const length = Math.abs(scale.range[1] - scale.range[0])
  for (let count = Math.max(2, Math.floor(length / spacing)); count >= 1; count--) {
    const values = scale.ticks(count)
    const labels = tickLabels(values, scale.kind)
    const positions = values.map(scale.map)
    const fits = values.every((_, i) =>
      i === 0 || Math.abs(positions[i]! - positions[i - 1]!) >= (extentOf(labels[i]!) + extentOf(labels[i - 1]!)) / 2 + labelGap
    )
    if (fits && values.length >= 2) return { values, labels }
  }
  // Even two ticks collide (a very short axis): keep the ends of the domain only when they fit, else one.
  const ends = [scale.domain[0], scale.domain[1]]
  const labels = tickLabels(ends, scale.kind)
  const apart = Math.abs(scale.range[1] - scale.range[0]) >= (extentOf(labels[0]!) + extentOf(labels[1]!)) / 2 + labelGap
  return apart ? { values: ends, labels } : { values: [ends[0]!], labels: [labels[0]!] }
}

export const horizontalExtent = (label: string) => textWidth(label, fontSize)
export const verticalExtent = (_label: string) => fontSize * 1.2

/** Widest label of a vertical axis: the room it needs to the left of the plot. */
export const labelsWidth = (ticks: AxisTicks) => Math.max(0, ...ticks.labels.map((l) => textWidth(l, fontSize)))

/** Room below the plot for a bottom axis: ticks, labels, title. */
export const bottomAxisHeight = tickLength + 4 + fontSize + 8 + fontSize + 4

export interface PlotArea {
  readonly left: number
  readonly top: number
  readonly right: number
  readonly bottom: number
}

/**
 * The x axis under the plot: ticks, labels and title. A label that would stick out of the chart
 * (`chartWidth`) at either end is anchored at that end instead of centred.
 */
export const bottomAxis = (scale: Scale, ticks: AxisTicks, area: PlotArea, title: string, chartWidth: number): string => {
  const y = area.bottom
  const parts = [`<line class="axis" x1="${px(area.left)}" y1="${px(y)}" x2="${px(area.right)}" y2="${px(y)}" stroke="${axisColour}"/>`]
  ticks.values.forEach((value, i) => {
    const x = scale.map(value)
    const width = textWidth(ticks.labels[i]!, fontSize)
    const anchor = x - width / 2 < 1 ? "start" : x + width / 2 > chartWidth - 1 ? "end" : "middle"
    const labelX = anchor === "start" ? Math.max(1, x - width / 2) : anchor === "end" ? Math.min(chartWidth - 1, x + width / 2) : x
    parts.push(`<line class="tick" x1="${px(x)}" y1="${px(y)}" x2="${px(x)}" y2="${px(y + tickLength)}" stroke="${axisColour}"/>`)
    // Low enough to clear the lowest y label, which sits centred on the same corner.
    parts.push(svgText(labelX, y + tickLength + 5 + fontSize * 0.85, ticks.labels[i]!, { anchor, className: "tick-label" }))
  })
  const fitted = fitText(title, fontSize, chartWidth - 4)
  const titleX = Math.min(Math.max((area.left + area.right) / 2, 2 + textWidth(fitted, fontSize) / 2), chartWidth - 2 - textWidth(fitted, fontSize) / 2)
  parts.push(svgText(titleX, y + bottomAxisHeight - 6, fitted, { anchor: "middle", className: "axis-title" }))
  return parts.join("")
}

/** The y axis left of the plot with horizontal grid lines; the title reads bottom to top. */
export const leftAxis = (scale: Scale, ticks: AxisTicks, area: PlotArea, title: string): string => {
  const x = area.left
  const parts = [`<line class="axis" x1="${px(x)}" y1="${px(area.top)}" x2="${px(x)}" y2="${px(area.bottom)}" stroke="${axisColour}"/>`]
  ticks.values.forEach((value, i) => {
    const y = scale.map(value)
    parts.push(`<line class="grid" x1="${px(x)}" y1="${px(y)}" x2="${px(area.right)}" y2="${px(y)}" stroke="${gridColour}"/>`)
    parts.push(`<line class="tick" x1="${px(x - tickLength)}" y1="${px(y)}" x2="${px(x)}" y2="${px(y)}" stroke="${axisColour}"/>`)
    parts.push(svgText(x - tickLength - 3, y + fontSize * 0.35, ticks.labels[i]!, { anchor: "end", className: "tick-label" }))
  })
  // A title longer than the axis is shortened: rotated text has nowhere else to go.
  const fitted = fitText(title, fontSize, area.bottom - area.top)
  parts.push(svgText(fontSize, (area.top + area.bottom) / 2, fitted, { anchor: "middle", rotate: -90, className: "axis-title" }))
  return parts.join("")
}

/** Room left of the plot for a left axis whose labels are `labelWidth` wide. */
export const leftAxisWidth = (labelWidth: number) => fontSize * 1.6 + labelWidth + tickLength + 6
