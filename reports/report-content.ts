import { GLCM_PROPERTIES, type GlcmProperty } from "../framework/metrics/glcm.ts"
import { domainAxisTitle, domainKey, domainSentence } from "./amplitude-domain.ts"
import { alignmentChart } from "./charts/alignment-chart.ts"
import { cdfChart } from "./charts/cdf-chart.ts"
import { glcmPanel } from "./charts/glcm-chart.ts"
import { histogramChart, type DistributionSeries } from "./charts/histogram-chart.ts"
import type { SvgChart } from "./charts/svg.ts"
import { trainingCurveChart } from "./charts/training-curve-chart.ts"
import { realSets, summariseGlcm } from "./glcm-summary.ts"
import { imageGrid, type ImageGrid } from "./image-grid.ts"
import { numeric } from "./metric-columns.ts"
import { realColour, realLabel } from "./strategy-colours.ts"
import type { StrategyResult, StudyResults, ValidationImage } from "./study-results.ts"
import { alignmentTable } from "./tables/alignment-table.ts"
import { metricTable } from "./tables/metric-table.ts"
import type { ReportTable } from "./tables/report-table.ts"
import { runFactsTable } from "./tables/run-facts-table.ts"
import { strategyTable } from "./tables/strategy-table.ts"
import { textureTable } from "./tables/texture-table.ts"

/** Everything a report shows, computed once; the HTML and Markdown renderers only lay it out. */
export interface ReportContent {
  readonly study: string
  readonly summary: ReadonlyArray<string>
  readonly tables: {
    readonly strategies: ReportTable
    readonly metrics: ReportTable
    readonly texture: ReportTable
    readonly alignment?: ReportTable
    readonly runFacts: ReportTable
  }
  readonly distributions: ReadonlyArray<{ readonly sentence: string; readonly histogram: SvgChart; readonly cdf: SvgChart }>
  readonly glcmPanels: ReadonlyArray<SvgChart>
  readonly alignment?: SvgChart
  readonly trainingCurves: ReadonlyArray<SvgChart>
  /** Each strategy's validation images (train.validationPrompts), listed, not compared. */
  readonly validationImages: ReadonlyArray<{ readonly strategy: string } & ValidationImage>
  readonly grid: ImageGrid
}

const chartWidth = 720
const chartHeight = 380

/** Charts per group of evaluations sharing domain and binning (normally the whole study). */
const distributionCharts = (results: StudyResults): ReportContent["distributions"] => {
  const groups = new Map<string, Array<StrategyResult>>()
  for (const s of results.strategies) groups.set(domainKey(s.evaluation.amplitude), [...(groups.get(domainKey(s.evaluation.amplitude)) ?? []), s])
  return [...groups.values()].map((members, g) => {
    const amplitude = members[0].evaluation.amplitude
    const reals = new Map<string, StrategyResult>()
    for (const s of members) if (!reals.has(s.evaluation.lineage.reference)) reals.set(s.evaluation.lineage.reference, s)
    const series: Array<DistributionSeries> = [
      ...[...reals.values()].map((s) => ({
        label: reals.size === 1 ? realLabel : `${realLabel} of ${s.name}`,
        colour: realColour,
        real: true,
        distribution: s.evaluation.amplitude.referenceDistribution
      })),
      ...members.map((s) => ({ label: s.name, colour: s.colour, real: false, distribution: s.evaluation.amplitude.generatedDistribution }))
    ]
    const spec = { xTitle: domainAxisTitle(amplitude), range: amplitude.range, series, width: chartWidth, height: chartHeight }
    const suffix = groups.size === 1 ? "" : `-${g + 1}`
    return {
      sentence: `${groups.size === 1 ? "" : `${members.map((m) => m.name).join(", ")}: `}${domainSentence(amplitude)}`,
      histogram: histogramChart({ ...spec, id: `amplitude-histogram${suffix}` }),
      cdf: cdfChart({ ...spec, id: `amplitude-cdf${suffix}` })
    }
  })
}

/** Units of the GLCM properties, with P normalised and i, j grey levels (DESIGN §7). */
const glcmUnits: Record<GlcmProperty, string> = {
  contrast: "grey levels²",
  dissimilarity: "grey levels",
  homogeneity: "unitless",
  ASM: "unitless",
  energy: "unitless",
  correlation: "unitless",
  mean: "grey level",
  variance: "grey levels²",
  std: "grey levels",
  entropy: "nats"
}

const glcmPanels = (results: StudyResults): ReadonlyArray<SvgChart> => {
  const reals = realSets(results.strategies, realLabel)
  const generated = results.strategies.map((s) => summariseGlcm(s.evaluation.texture.generated))
  return GLCM_PROPERTIES.map((property) =>
    glcmPanel({
      id: `glcm-${property.toLowerCase()}`,
      property,
      unit: glcmUnits[property],
      width: 340,
      bars: [
        ...reals.map((r) => ({ label: r.label, colour: realColour, value: r.glcm[property], real: true })),
        ...results.strategies.map((s, i) => ({ label: s.name, colour: s.colour, value: generated[i][property], real: false }))
      ]
    }))
}

const alignmentBars = (results: StudyResults): SvgChart | undefined => {
  const scored = results.strategies.filter((s) => s.evaluation.alignment !== undefined)
  if (scored.length === 0) return undefined
  const splits = (["seen", "unseen"] as const).filter((split) => scored.some((s) => numeric(s.evaluation.alignment![split]) !== undefined))
  return alignmentChart({
    id: "clip-alignment",
    width: chartWidth,
    height: chartHeight,
    strategies: scored.map((s) => ({ label: s.name, colour: s.colour })),
    groups: splits.map((split) => ({
      label: `${split} prompts`,
      bars: scored.map((s) => ({ label: s.name, colour: s.colour, value: numeric(s.evaluation.alignment![split]) }))
    }))
  })
}

/** Axis titles of the engine's training metrics (adapters/tfjs/training/trainer.ts names them). */
const metricTitle = (metric: string): string => {
  if (metric === "loss") return "training loss"
  if (metric.startsWith("lr/")) return `learning rate of ${metric.slice(3)}`
  if (metric === "grad_norm") return "gradient norm ‖g‖₂"
  if (metric === "images_per_s") return "throughput (images/s)"
  return metric
}

/** Loss first, then learning rates, then the rest alphabetically. */
const metricOrder = (metric: string) => (metric === "loss" ? 0 : metric.startsWith("lr/") ? 1 : 2)

const trainingCurves = (results: StudyResults): ReadonlyArray<SvgChart> => {
  const trained = results.strategies.filter((s) => s.trainingLog.length > 0)
  const metrics = new Set<string>()
  for (const s of trained) for (const line of s.trainingLog) for (const [k, v] of Object.entries(line)) if (k !== "step" && typeof v === "number") metrics.add(k)
  return [...metrics]
    .sort((a, b) => metricOrder(a) - metricOrder(b) || a.localeCompare(b))
    .map((metric) =>
      trainingCurveChart({
        id: `training-${metric.replace(/[^a-zA-Z0-9_-]/g, "-")}`,
        metric,
        yTitle: metricTitle(metric),
        noisy: !metric.startsWith("lr/"),
        width: chartWidth,
        height: 300,
        series: trained
          .filter((s) => s.trainingLog.some((l) => typeof l[metric] === "number"))
          .map((s) => ({
            label: s.name,
            colour: s.colour,
            points: s.trainingLog.filter((l) => typeof l[metric] === "number").map((l) => [l.step, l[metric]] as const)
          }))
      }))
}

/** The lead of the report: which strategy wins where, read off the metric table's best marks. */
const summaryOf = (results: StudyResults, metrics: ReportTable): ReadonlyArray<string> => {
  const wins = results.strategies.map((_, r) => metrics.rows[r].filter((c) => c.best).length)
  const columns = metrics.header.length - 1
  const top = Math.max(...wins)
  const leaders = results.strategies.filter((_, r) => wins[r] === top).map((s) => s.name)
  const bestIn = (label: string) => {
    const k = metrics.header.findIndex((h) => h.startsWith(label))
    if (k < 0) return undefined
    const names = results.strategies.filter((_, r) => metrics.rows[r][k].best).map((s) => s.name)
    return names.length === 0 ? undefined : `${label}: ${names.join(", ")}`
  }
  return [
    `${results.strategies.length} ${results.strategies.length === 1 ? "strategy" : "strategies"} compared on ${columns} metrics. ` +
      (results.strategies.length > 1 ? `Best on the most metrics: ${leaders.join(", ")} (${top} of ${columns}).` : ""),
    ["Wasserstein-1", "GLCM Canberra", "CLIP seen", "CLIP unseen"].map(bestIn).filter((t) => t !== undefined).join("; ") + "."
  ].filter((t) => t.trim() !== ".")
}

export const reportContent = (results: StudyResults): ReportContent => {
  const metrics = metricTable(results)
  const alignment = alignmentTable(results)
  const chart = alignmentBars(results)
  return {
    study: results.study,
    summary: summaryOf(results, metrics),
    tables: {
      strategies: strategyTable(results),
      metrics,
      texture: textureTable(results),
      ...(alignment === undefined ? {} : { alignment }),
      runFacts: runFactsTable(results)
    },
    distributions: distributionCharts(results),
    glcmPanels: glcmPanels(results),
    ...(chart === undefined ? {} : { alignment: chart }),
    trainingCurves: trainingCurves(results),
    validationImages: results.strategies.flatMap((s) => s.validationImages.map((image) => ({ strategy: s.name, ...image }))),
    grid: imageGrid(results)
  }
}
