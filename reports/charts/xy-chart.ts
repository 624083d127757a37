import { bottomAxis, bottomAxisHeight, fittedTicks, horizontalExtent, labelsWidth, leftAxis, leftAxisWidth, verticalExtent, type PlotArea } from "./axis.ts"
import { legend, type LegendItem } from "./legend.ts"
import { linearScale, logScale, type Scale } from "./scale.ts"
import { escapeXml, px, svgDocument, type SvgChart } from "./svg.ts"

/** A polyline in data coordinates. */
export interface XySeries {
  readonly label: string
  readonly colour: string
  readonly points: ReadonlyArray<readonly [number, number]>
  readonly width?: number
  readonly dash?: string
  readonly opacity?: number
}

/**
 * A shaded area between two polylines in data coordinates (an interval around a curve): `from`
 * runs one way along the band, `to` along its other edge, in the same order.
 */
export interface XyBand {
  readonly label: string
  readonly colour: string
  readonly from: ReadonlyArray<readonly [number, number]>
  readonly to: ReadonlyArray<readonly [number, number]>
}

export interface XyAxis {
  /** Title with its unit: "normalised amplitude v (unitless)". */
  readonly title: string
  readonly domain: readonly [number, number]
  readonly kind: "linear" | "log"
}

export interface XyChartSpec {
  readonly id: string
  /** What the chart shows, for screen readers and the tooltip. */
  readonly label: string
  readonly width: number
  /** Height without the legend: a legend of many rows makes the chart taller, not the plot smaller. */
  readonly height: number
  readonly x: XyAxis
  readonly y: XyAxis
  readonly series: ReadonlyArray<XySeries>
  /** Drawn under the lines. */
  readonly bands?: ReadonlyArray<XyBand>
  readonly legend: ReadonlyArray<LegendItem>
}

const margin = { top: 8, right: 14 }

const scaleOf = (axis: XyAxis, range: readonly [number, number]): Scale => axis.kind === "log" ? logScale(axis.domain, range) : linearScale(axis.domain, range)

/** Points outside a log axis (zero, negative) are drawn on its floor rather than dropped. */
const clampTo = (scale: Scale, value: number) => scale.kind === "log" ? Math.max(value, scale.domain[0]) : value

const pathOf = (series: XySeries, x: Scale, y: Scale): string => {
  let d = ""
  let pen = false
  for (const [vx, vy] of series.points) {
    if (!Number.isFinite(vx) || !Number.isFinite(vy)) {
      // A gap in the data is a gap in the line.
      pen = false
      continue
    }
    d += `${pen ? "L" : "M"}${px(x.map(vx))} ${px(y.map(clampTo(y, vy)))}`
    pen = true
  }
  return d
}

const bandPathOf = (band: XyBand, x: Scale, y: Scale): string => {
  const finite = (points: ReadonlyArray<readonly [number, number]>) => points.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b))
  const outline = [...finite(band.from), ...[...finite(band.to)].reverse()]
  if (outline.length < 3) return ""
  return `${outline.map(([vx, vy], i) => `${i === 0 ? "M" : "L"}${px(x.map(vx))} ${px(y.map(clampTo(y, vy)))}`).join("")}Z`
}

/** Axes, a legend on top, shaded bands, and one line per series, clipped to the plot area. */
export const xyChart = (spec: XyChartSpec): SvgChart => {
  const top = legend(spec.legend, margin.top, margin.top, spec.width - 2 * margin.top)
  const plotTop = margin.top + top.height + (top.height > 0 ? 8 : 4)
  const height = spec.height + top.height
  const plotBottom = height - bottomAxisHeight
  // The y ticks depend only on the plot height, and their labels fix the left margin.
  const yScale0 = scaleOf(spec.y, [plotBottom, plotTop])
  const yTicks = fittedTicks(yScale0, verticalExtent, 40)
  const left = leftAxisWidth(labelsWidth(yTicks))
  const area: PlotArea = { left, top: plotTop, right: spec.width - margin.right, bottom: plotBottom }
  const x = scaleOf(spec.x, [area.left, area.right])
  const y = yScale0
  const xTicks = fittedTicks(x, horizontalExtent, 70)
  const clip = `${spec.id}-clip`
  const lines = spec.series.map((s) => {
    const d = pathOf(s, x, y)
    return d.length === 0
      ? ""
      : `<path class="mark" data-series="${escapeXml(s.label)}" d="${d}" fill="none" stroke="${s.colour}" stroke-width="${s.width ?? 1.6}"` +
        `${s.dash === undefined ? "" : ` stroke-dasharray="${s.dash}"`}${s.opacity === undefined ? "" : ` stroke-opacity="${s.opacity}"`} ` +
        `stroke-linejoin="round" clip-path="url(#${clip})"/>`
  })
  const bands = (spec.bands ?? []).map((band) => {
    const d = bandPathOf(band, x, y)
    return d.length === 0
      ? ""
      : `<path class="band" data-band="${escapeXml(band.label)}" d="${d}" fill="${band.colour}" fill-opacity="0.16" stroke="none" clip-path="url(#${clip})"/>`
  })
  const body = [
    `<defs><clipPath id="${clip}"><rect x="${px(area.left)}" y="${px(area.top - 1)}" width="${px(area.right - area.left)}" height="${
      px(area.bottom - area.top + 2)
    }"/></clipPath></defs>`,
    top.svg,
    leftAxis(y, yTicks, area, spec.y.title),
    bottomAxis(x, xTicks, area, spec.x.title, spec.width),
    `<g class="bands">${bands.join("")}</g>`,
    `<g class="series">${lines.join("")}</g>`
  ]
  return svgDocument(spec.id, spec.width, height, spec.label, body.join(""))
}
