import { decimate } from "./decimate.ts"
import { extent, niceDomain } from "./scale.ts"
import type { SvgChart } from "./svg.ts"
import { xyChart, type XySeries } from "./xy-chart.ts"

/** One strategy's values of one training metric, by step; with replicates, the mean and their range. */
export interface CurveSeries {
  readonly label: string
  readonly colour: string
  readonly points: ReadonlyArray<readonly [number, number]>
  /** Lowest and highest replicate at each step. */
  readonly range?: { readonly low: ReadonlyArray<readonly [number, number]>; readonly high: ReadonlyArray<readonly [number, number]> }
}

export interface TrainingCurveSpec {
  readonly id: string
  readonly metric: string
  readonly yTitle: string
  /**
   * Noisy series (loss, gradient norm) get a smoothed line over the raw one; scheduled ones
   * (learning rates) are exact and drawn as they are, on a linear axis.
   */
  readonly noisy: boolean
  readonly series: ReadonlyArray<CurveSeries>
  /**
   * Curves measured alongside, in their strategies' colours, dashed and drawn as they are (the held-out
   * validation loss next to the training loss: few exact points, nothing to smooth).
   */
  readonly dashed?: ReadonlyArray<CurveSeries>
  readonly width: number
  readonly height: number
}

const validationDash = "6 3"

/** Points beyond which a curve also gets a smoothed line (per-step loss is noisy). */
const smoothFrom = 20
/** Weight of the newest point in the moving average (TensorBoard's smoothing 0.9). */
const smoothingAlpha = 0.1

/** Exponential moving average with the start-up bias removed, as TensorBoard draws it. */
const smoothed = (points: ReadonlyArray<readonly [number, number]>): ReadonlyArray<readonly [number, number]> => {
  let average = 0
  let weight = 0
  return points.map(([x, y]) => {
    if (!Number.isFinite(y)) return [x, y] as const
    average = average * (1 - smoothingAlpha) + y * smoothingAlpha
    weight = weight * (1 - smoothingAlpha) + smoothingAlpha
    return [x, average / weight] as const
  })
}

export const trainingCurveChart = (spec: TrainingCurveSpec): SvgChart => {
  const buckets = Math.round(spec.width)
  const dashed = spec.dashed ?? []
  const lines: Array<XySeries> = spec.series.flatMap((s): Array<XySeries> => {
    const raw = decimate(s.points, buckets)
    if (!spec.noisy || s.points.length < smoothFrom) return [{ label: s.label, colour: s.colour, points: raw }]
    return [
      { label: s.label, colour: s.colour, points: raw, width: 1, opacity: 0.3 },
      { label: s.label, colour: s.colour, points: decimate(smoothed(s.points), buckets), width: 1.8 }
    ]
  }).concat(dashed.map((s) => ({ label: s.label, colour: s.colour, points: decimate(s.points, buckets), width: 1.8, dash: validationDash })))
  const all = [...spec.series, ...dashed]
  const bands = all.flatMap((s) =>
    s.range === undefined ? [] : [{ label: s.label, colour: s.colour, from: decimate(s.range.low, buckets), to: decimate(s.range.high, buckets) }]
  )
  const [x0, x1] = extent(all.flatMap((s) => s.points.map(([x]) => x))) ?? [0, 1]
  const ys = extent(all.flatMap((s) => [...s.points, ...(s.range?.low ?? []), ...(s.range?.high ?? [])].map(([, y]) => y))) ?? [0, 1]
  // A noisy positive series spanning more than two decades (a falling loss) reads better on a log axis.
  const log = spec.noisy && ys[0] > 0 && ys[1] / ys[0] > 100
  const yDomain = log ? ys : niceDomain(Math.min(0, ys[0]), ys[1])
  return xyChart({
    id: spec.id,
    label: `Training curve of ${spec.metric} per strategy`,
    width: spec.width,
    height: spec.height,
    x: { title: "training step", domain: [x0, Math.max(x0 + 1, x1)], kind: "linear" },
    y: { title: log ? `${spec.yTitle} (log scale)` : spec.yTitle, domain: yDomain, kind: log ? "log" : "linear" },
    series: lines,
    bands,
    legend: [
      ...spec.series.map((s) => ({ label: s.label, colour: s.colour, shape: "line" as const })),
      ...dashed.map((s) => ({ label: s.label, colour: s.colour, shape: "line" as const, dash: validationDash }))
    ]
  })
}
