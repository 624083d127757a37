import { legendOf, lineStyle, type DistributionChartSpec } from "./histogram-chart.ts"
import type { SvgChart } from "./svg.ts"
import { xyChart } from "./xy-chart.ts"

/** Empirical CDFs (the stored quantile function, drawn as value → cumulative fraction). */
export const cdfChart = (spec: DistributionChartSpec): SvgChart =>
  xyChart({
    id: spec.id,
    label: "Cumulative distribution of pixel values, real set and each strategy",
    width: spec.width,
    height: spec.height,
    x: { title: spec.xTitle, domain: spec.range, kind: "linear" },
    y: { title: "cumulative fraction of pixels", domain: [0, 1], kind: "linear" },
    series: spec.series.map((s) => ({
      label: s.label,
      colour: s.colour,
      points: s.distribution.quantiles.map((q, i) => [q, s.distribution.probabilities[i]!] as const),
      ...lineStyle(s)
    })),
    bands: spec.series.flatMap((s) =>
      s.band === undefined
        ? []
        : [{
          label: s.label,
          colour: s.colour,
          from: s.band.quantileLow.map((q, i) => [q, s.distribution.probabilities[i]!] as const),
          to: s.band.quantileHigh.map((q, i) => [q, s.distribution.probabilities[i]!] as const)
        }]
    ),
    legend: legendOf(spec.series)
  })
