import type { DistributionBand } from "../../framework/metrics/evaluation-intervals.ts"
import type { Distribution } from "../../framework/metrics/set-comparison.ts"
import type { LegendItem } from "./legend.ts"
import { logDomain } from "./scale.ts"
import type { SvgChart } from "./svg.ts"
import { type XyBand, xyChart, type XySeries } from "./xy-chart.ts"

/** A set's distribution and how to draw it. */
export interface DistributionSeries {
  readonly label: string
  readonly colour: string
  readonly real: boolean
  readonly distribution: Distribution
  /** Pointwise interval of the generated distribution, drawn as a band. */
  readonly band?: DistributionBand
}

export interface DistributionChartSpec {
  readonly id: string
  readonly xTitle: string
  readonly range: readonly [number, number]
  readonly series: ReadonlyArray<DistributionSeries>
  readonly width: number
  readonly height: number
}

export const lineStyle = (s: DistributionSeries) => (s.real ? { width: 2.6 } : { width: 1.5 })

export const legendOf = (series: ReadonlyArray<DistributionSeries>): ReadonlyArray<LegendItem> =>
  series.map((s) => ({ label: s.label, colour: s.colour, shape: "line" as const, lineWidth: lineStyle(s).width }))

/** Histograms overlaid as step lines on a log axis, so the tails (bright scatterers, dark water) show. */
export const histogramChart = (spec: DistributionChartSpec): SvgChart => {
  const series: Array<XySeries> = spec.series.map((s) => {
    const { edges, density } = s.distribution
    const points: Array<readonly [number, number]> = []
    density.forEach((d, k) => {
      points.push([edges[k]!, d], [edges[k + 1]!, d])
    })
    return { label: s.label, colour: s.colour, points, ...lineStyle(s) }
  })
  const steps = (edges: ReadonlyArray<number>, values: ReadonlyArray<number>) =>
    values.flatMap((d, k) => [[edges[k]!, d] as const, [edges[k + 1]!, d] as const])
  const bands: Array<XyBand> = spec.series.flatMap((s) =>
    s.band === undefined
      ? []
      : [{ label: s.label, colour: s.colour, from: steps(s.distribution.edges, s.band.densityLow), to: steps(s.distribution.edges, s.band.densityHigh) }]
  )
  const domain = logDomain(spec.series.flatMap((s) => s.distribution.density))
  return xyChart({
    id: spec.id,
    label: "Histogram of pixel values, real set and each strategy, log scale",
    width: spec.width,
    height: spec.height,
    x: { title: spec.xTitle, domain: spec.range, kind: "linear" },
    y: { title: "fraction of pixels per bin (log scale)", domain, kind: "log" },
    series,
    bands,
    legend: legendOf(spec.series)
  })
}
