import { bottomAxisHeight, fittedTicks, labelsWidth, leftAxis, leftAxisWidth, verticalExtent, type PlotArea } from "./axis.ts"
import { legend } from "./legend.ts"
import { linearScale, niceDomain } from "./scale.ts"
import { errorBar } from "./error-bar.ts"
import { axisColour, escapeXml, fontSize, px, svgDocument, svgText, type SvgChart } from "./svg.ts"
import { fitText } from "./text-width.ts"

export interface AlignmentBarGroup {
  /** "seen prompts", "unseen prompts". */
  readonly label: string
  readonly bars: ReadonlyArray<{
    readonly label: string
    readonly colour: string
    readonly value: number | undefined
    /** The value's confidence interval, drawn as an error bar. */
    readonly low?: number
    readonly high?: number
  }>
}

export interface AlignmentChartSpec {
  readonly id: string
  readonly groups: ReadonlyArray<AlignmentBarGroup>
  readonly strategies: ReadonlyArray<{ readonly label: string; readonly colour: string }>
  readonly width: number
  readonly height: number
}

const groupGap = 28

/** CLIP alignment as grouped bars: one group per prompt split, one bar per strategy in its colour, its interval as an error bar. */
export const alignmentChart = (spec: AlignmentChartSpec): SvgChart => {
  const top = legend(spec.strategies.map((s) => ({ label: s.label, colour: s.colour, shape: "box" as const })), 8, 8, spec.width - 16)
  const plotTop = 8 + top.height + 10
  // The legend adds to the height rather than taking it from the plot.
  const height = spec.height + top.height
  const plotBottom = height - bottomAxisHeight
  const values = spec.groups.flatMap((g) => g.bars.flatMap((b) => [b.value, b.low, b.high])).filter((v): v is number => v !== undefined && Number.isFinite(v))
  const y = linearScale(niceDomain(Math.min(0, ...values), Math.max(0, ...values)), [plotBottom, plotTop])
  const yTicks = fittedTicks(y, verticalExtent, 40)
  const area: PlotArea = { left: leftAxisWidth(labelsWidth(yTicks)), top: plotTop, right: spec.width - 14, bottom: plotBottom }
  const groupWidth = (area.right - area.left - groupGap * (spec.groups.length + 1)) / Math.max(1, spec.groups.length)
  const zero = y.map(0)
  const parts = [top.svg, leftAxis(y, yTicks, area, "CLIP score (100·cos)")]
  spec.groups.forEach((group, g) => {
    const left = area.left + groupGap + g * (groupWidth + groupGap)
    const barWidth = groupWidth / Math.max(1, group.bars.length)
    group.bars.forEach((bar, i) => {
      if (bar.value === undefined || !Number.isFinite(bar.value)) return
      const end = y.map(bar.value)
      parts.push(
        `<rect class="mark" data-series="${escapeXml(bar.label)}" x="${px(left + i * barWidth + 1)}" y="${px(Math.min(zero, end))}" ` +
          `width="${px(Math.max(1, barWidth - 2))}" height="${px(Math.max(1, Math.abs(end - zero)))}" fill="${bar.colour}">` +
          `<title>${escapeXml(`${bar.label}, ${group.label}: ${bar.value}`)}</title></rect>`
      )
      if (bar.low !== undefined && bar.high !== undefined && Number.isFinite(bar.low) && Number.isFinite(bar.high)) {
        parts.push(errorBar(left + i * barWidth + barWidth / 2, y.map(bar.low), y.map(bar.high), Math.min(8, barWidth / 3), "vertical", bar.label))
      }
    })
    parts.push(
      svgText(left + groupWidth / 2, area.bottom + 6 + fontSize, fitText(group.label, fontSize, groupWidth + groupGap - 4), {
        anchor: "middle",
        className: "tick-label"
      })
    )
  })
  parts.push(`<line class="axis" x1="${px(area.left)}" y1="${px(zero)}" x2="${px(area.right)}" y2="${px(zero)}" stroke="${axisColour}"/>`)
  const title = fitText("prompt split (seen: concept in the training captions; unseen: withheld)", fontSize, area.right - area.left)
  parts.push(svgText((area.left + area.right) / 2, area.bottom + bottomAxisHeight - 6, title, { anchor: "middle", className: "axis-title" }))
  return svgDocument(spec.id, spec.width, height, "CLIP alignment per strategy, seen and unseen prompts", parts.join(""))
}
