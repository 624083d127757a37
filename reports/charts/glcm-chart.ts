import { bottomAxis, bottomAxisHeight, fittedTicks, horizontalExtent, type PlotArea } from "./axis.ts"
import { linearScale, niceDomain } from "./scale.ts"
import { errorBar } from "./error-bar.ts"
import { axisColour, escapeXml, fontSize, px, svgDocument, svgText, type SvgChart } from "./svg.ts"
import { fitName } from "./text-width.ts"

/** One bar: a set's value of one GLCM property. */
export interface GlcmBar {
  readonly label: string
  readonly colour: string
  readonly value: number | undefined
  readonly real: boolean
  /** The value's confidence interval, drawn as an error bar. */
  readonly low?: number
  readonly high?: number
}

export interface GlcmPanelSpec {
  readonly id: string
  readonly property: string
  /** "grey levels²", "nats", "unitless". */
  readonly unit: string
  readonly bars: ReadonlyArray<GlcmBar>
  readonly width: number
}

const rowHeight = 15
const rowGap = 4
const titleHeight = 20
const labelColumn = 118

/**
 * One small multiple: a GLCM property as horizontal bars, the real set's first and its value
 * repeated as a dashed line through the strategies' bars. Set names label the rows (shortened in the middle
 * to the label column), so the panel reads without the legend.
 */
export const glcmPanel = (spec: GlcmPanelSpec): SvgChart => {
  const values = spec.bars.flatMap((b) => [b.value, b.low, b.high]).filter((v): v is number => v !== undefined && Number.isFinite(v))
  const plotHeight = spec.bars.length * (rowHeight + rowGap) + rowGap
  const area: PlotArea = { left: labelColumn, top: titleHeight, right: spec.width - 14, bottom: titleHeight + plotHeight }
  // Domain and ticks from the same count, so the axis ends on a labelled tick.
  const tickSpacing = 60
  const domain = niceDomain(Math.min(0, ...values), Math.max(0, ...values), Math.max(2, Math.floor((area.right - area.left) / tickSpacing)))
  const x = linearScale(domain, [area.left, area.right])
  const ticks = fittedTicks(x, horizontalExtent, tickSpacing)
  const height = area.bottom + bottomAxisHeight
  const parts = [svgText(4, 14, spec.property, { weight: "bold", className: "panel-title" })]
  const zero = x.map(0)
  spec.bars.forEach((bar, i) => {
    const top = area.top + rowGap + i * (rowHeight + rowGap)
    parts.push(
      svgText(area.left - 6, top + rowHeight / 2 + fontSize * 0.35, fitName(bar.label, fontSize, labelColumn - 10), { anchor: "end", className: "tick-label" })
    )
    if (bar.value === undefined || !Number.isFinite(bar.value)) {
      parts.push(svgText(zero + 4, top + rowHeight / 2 + fontSize * 0.35, "n/a", { className: "note" }))
      return
    }
    const end = x.map(bar.value)
    parts.push(
      `<rect class="mark" data-series="${escapeXml(bar.label)}" x="${px(Math.min(zero, end))}" y="${px(top)}" ` +
        `width="${px(Math.max(1, Math.abs(end - zero)))}" height="${rowHeight}" fill="${bar.colour}"><title>${
          escapeXml(`${bar.label}: ${bar.value}`)
        }</title></rect>`
    )
    if (bar.low !== undefined && bar.high !== undefined && Number.isFinite(bar.low) && Number.isFinite(bar.high)) {
      parts.push(errorBar(top + rowHeight / 2, x.map(bar.low), x.map(bar.high), 6, "horizontal", bar.label))
    }
  })
  const real = spec.bars.find((b) => b.real && b.value !== undefined && Number.isFinite(b.value))
  if (real !== undefined) {
    const rx = x.map(real.value!)
    parts.push(
      `<line class="reference-line" x1="${px(rx)}" y1="${px(area.top)}" x2="${px(rx)}" y2="${px(area.bottom)}" stroke="${real.colour}" stroke-dasharray="4 3"/>`
    )
  }
  parts.push(`<line class="axis" x1="${px(zero)}" y1="${px(area.top)}" x2="${px(zero)}" y2="${px(area.bottom)}" stroke="${axisColour}"/>`)
  parts.push(bottomAxis(x, ticks, area, `${spec.property} (${spec.unit})`, spec.width))
  return svgDocument(spec.id, spec.width, height, `GLCM ${spec.property}: real set and each strategy`, parts.join(""))
}
