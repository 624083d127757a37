import type { DistributionBand } from "../framework/metrics/evaluation-intervals.ts"
import { GLCM_PROPERTIES, type GlcmProperty } from "../framework/metrics/glcm.ts"
import { evaluationMetrics, glcmEstimate, learningRateMetric, trainingMetrics } from "../framework/metrics/metric-catalog.ts"
import type { Distribution } from "../framework/metrics/set-comparison.ts"
import { domainAxisTitle, domainKey, domainSentence } from "./amplitude-domain.ts"
import { alignmentChart } from "./charts/alignment-chart.ts"
import { cdfChart } from "./charts/cdf-chart.ts"
import { glcmPanel } from "./charts/glcm-chart.ts"
import { histogramChart, type DistributionSeries } from "./charts/histogram-chart.ts"
import type { SvgChart } from "./charts/svg.ts"
import { trainingCurveChart } from "./charts/training-curve-chart.ts"
import { type ConditionedSection, conditionedSections } from "./conditioned-rows.ts"
import { realSets } from "./glcm-summary.ts"
import { imageGrid, type ImageGrid } from "./image-grid.ts"
import { numeric } from "./metric-columns.ts"
import { realColour, realLabel } from "./strategy-colours.ts"
import type { ValidationImage } from "../framework/steps/validation-images.ts"
import { estimateOf, type StrategyResult, strategyLabel, type StudyResults } from "./study-results.ts"
import { alignmentTable } from "./tables/alignment-table.ts"
import { metricTable, presentColumns, promptFollowingTable } from "./tables/metric-table.ts"
import type { ReportTable } from "./tables/report-table.ts"
import { runFactsTable } from "./tables/run-facts-table.ts"
import { strategyTable } from "./tables/strategy-table.ts"
import { pairedTables } from "./tables/paired-tables.ts"
import { textureTable } from "./tables/texture-table.ts"
import { replicatesTable, verdictTable } from "./tables/verdict-table.ts"

/** Everything a report shows, computed once; the HTML and Markdown renderers only lay it out. */
export interface ReportContent {
  readonly study: string
  readonly summary: ReadonlyArray<string>
  readonly tables: {
    readonly strategies: ReportTable
    readonly metrics: ReportTable
    /** Gap, top-1 and top-k per split, when any strategy has them. */
    readonly promptFollowing?: ReportTable
    readonly texture: ReportTable
    /** Conditioned strategies only: their paired evaluation (paired-tables.ts). */
    readonly paired: ReadonlyArray<ReportTable>
    readonly alignment?: ReportTable
    readonly replicates?: ReportTable
    readonly runFacts: ReportTable
  }
  /** "Which differences are real": one table per comparison, and what could not be compared. */
  readonly verdicts: { readonly tables: ReadonlyArray<ReportTable>; readonly notCompared: ReadonlyArray<string> }
  readonly distributions: ReadonlyArray<{ readonly sentence: string; readonly histogram: SvgChart; readonly cdf: SvgChart }>
  readonly glcmPanels: ReadonlyArray<SvgChart>
  readonly alignment?: SvgChart
  readonly trainingCurves: ReadonlyArray<SvgChart>
  /** Each strategy's validation images (train.validationPrompts), listed, not compared. */
  readonly validationImages: ReadonlyArray<{ readonly strategy: string } & ValidationImage>
  readonly grid: ImageGrid
  /** Conditioned strategies: condition | true SAR | generated rows per scene (conditioned-rows.ts). */
  readonly conditioned: ReadonlyArray<ConditionedSection>
}

/** Prose both formats print. */
export const differencesIntroduction =
  "Each strategy against the baseline, and each pair the study declares (compare). Per metric: the difference, its confidence interval, the p-value and the verdict. " +
  "Samples that pair up (same prompts and sampling seeds) are compared by a paired permutation test over their noise draws (images that share a seed share their starting noise, so they move as one); " +
  "samples that do not, by an unpaired one; strategies trained with several seeds, by Welch's t test over the seeds. " +
  "Holm's correction keeps the chance of any false \"better\" or \"worse\" within a comparison at the declared level, whatever the dependence between metrics. " +
  "\"No detectable difference\" means this study cannot tell the two apart, not that they are equal."
export const noComparisons = "Nothing to compare: no experiment is marked `baseline: true` and the study declares no pairs (study({ compare: [[a, b]] }))."
export const bandCaption =
  "Shaded: the pointwise confidence interval of each strategy's curve (bootstrap over its noise draws), or with training replicates the range of their curves around their mean."
export const trainingNote =
  "Per training step. Loss, gradient norm and throughput with more than 20 steps: the faint line is the raw value, the solid one its exponential moving average (α = 0.1). " +
  "Learning rates are drawn as scheduled. With training replicates: the mean over the seeds, shaded between the lowest and highest seed."

const chartWidth = 720
const chartHeight = 380

/**
 * A strategy's generated distribution as the charts draw it: its run's, with the bootstrap's
 * pointwise interval as a band; with training replicates, the pointwise mean of theirs, banded by
 * their range.
 */
const drawnDistribution = (s: StrategyResult): { readonly distribution: Distribution; readonly band?: DistributionBand } => {
  const runs = s.replicates.map((r) => r.evaluation.amplitude.generatedDistribution)
  const first = runs[0]!
  if (runs.length === 1) return { distribution: first, ...(first.band === undefined ? {} : { band: first.band }) }
  const pointwise = (pick: (d: Distribution) => ReadonlyArray<number>, combine: (values: ReadonlyArray<number>) => number) =>
    pick(first).map((_, k) => combine(runs.map((d) => pick(d)[k]!)))
  const mean = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0) / values.length
  return {
    distribution: { ...first, density: pointwise((d) => d.density, mean), quantiles: pointwise((d) => d.quantiles, mean) },
    band: {
      densityLow: pointwise((d) => d.density, (v) => Math.min(...v)),
      densityHigh: pointwise((d) => d.density, (v) => Math.max(...v)),
      quantileLow: pointwise((d) => d.quantiles, (v) => Math.min(...v)),
      quantileHigh: pointwise((d) => d.quantiles, (v) => Math.max(...v))
    }
  }
}

/** Charts per group of evaluations sharing domain and binning (normally the whole study). */
const distributionCharts = (results: StudyResults): ReportContent["distributions"] => {
  const groups = new Map<string, Array<StrategyResult>>()
  for (const s of results.strategies) groups.set(domainKey(s.evaluation.amplitude), [...(groups.get(domainKey(s.evaluation.amplitude)) ?? []), s])
  return [...groups.values()].map((members, g) => {
    const amplitude = members[0]!.evaluation.amplitude
    const reals = new Map<string, StrategyResult>()
    for (const s of members) if (!reals.has(s.evaluation.lineage.reference)) reals.set(s.evaluation.lineage.reference, s)
    const series: Array<DistributionSeries> = [
      ...[...reals.values()].map((s) => ({
        label: reals.size === 1 ? realLabel : `${realLabel} of ${s.name}`,
        colour: realColour,
        real: true,
        distribution: s.evaluation.amplitude.referenceDistribution
      })),
      ...members.map((s) => ({ label: s.name, colour: s.colour, real: false, ...drawnDistribution(s) }))
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
  return GLCM_PROPERTIES.map((property) =>
    glcmPanel({
      id: `glcm-${property.toLowerCase()}`,
      property,
      unit: glcmUnits[property],
      width: 340,
      bars: [
        ...reals.map((r) => ({ label: r.label, colour: realColour, value: r.glcm[property], real: true })),
        ...results.strategies.map((s) => {
          const estimate = estimateOf(s, glcmEstimate(property).id)
          return {
            label: s.name,
            colour: s.colour,
            value: estimate?.value,
            real: false,
            ...(estimate === undefined ? {} : { low: estimate.low, high: estimate.high })
          }
        })
      ]
    })
  )
}

const alignmentBars = (results: StudyResults): SvgChart | undefined => {
  const scored = results.strategies.filter((s) => s.evaluation.alignment !== undefined)
  if (scored.length === 0) return undefined
  const ids = { seen: evaluationMetrics.clipSeen.id, unseen: evaluationMetrics.clipUnseen.id } as const
  const splits = (["seen", "unseen"] as const).filter((split) => scored.some((s) => estimateOf(s, ids[split]) !== undefined))
  return alignmentChart({
    id: "clip-alignment",
    width: chartWidth,
    height: chartHeight,
    strategies: scored.map((s) => ({ label: s.name, colour: s.colour })),
    groups: splits.map((split) => ({
      label: `${split} prompts`,
      bars: scored.map((s) => {
        const estimate = estimateOf(s, ids[split])
        return {
          label: s.name,
          colour: s.colour,
          value: numeric(estimate?.value),
          ...(estimate === undefined ? {} : { low: estimate.low, high: estimate.high })
        }
      })
    }))
  })
}

const isLearningRate = (metric: string) => metric.startsWith(learningRateMetric(""))

/** Axis titles of the engines' training metrics (named by the metric catalog). */
const metricTitle = (metric: string): string => {
  if (metric === trainingMetrics.loss) return "training loss"
  if (isLearningRate(metric)) return `learning rate of ${metric.slice(learningRateMetric("").length)}`
  if (metric === trainingMetrics.gradNorm) return "gradient norm ‖g‖₂"
  if (metric === trainingMetrics.imagesPerSecond) return "throughput (images/s)"
  return metric
}

/** Loss first, then learning rates, then the rest alphabetically. */
const metricOrder = (metric: string) => (metric === trainingMetrics.loss ? 0 : isLearningRate(metric) ? 1 : 2)

/** One strategy's curve of a metric: its run's, or with replicates the mean per step and their range. */
const curveOf = (s: StrategyResult, metric: string) => {
  // Lines without the metric are left out here, so each line read below has it.
  const logs = s.replicates.map((r) => r.trainingLog.filter((l) => typeof l[metric] === "number"))
  if (logs.length === 1) return { points: logs[0]!.map((l) => [l.step, l[metric]!] as const) }
  const byStep = new Map<number, Array<number>>()
  for (const log of logs) for (const line of log) byStep.set(line.step, [...(byStep.get(line.step) ?? []), line[metric]!])
  const steps = [...byStep.keys()].sort((a, b) => a - b)
  const at = (combine: (values: ReadonlyArray<number>) => number) => steps.map((step) => [step, combine(byStep.get(step)!)] as const)
  return {
    points: at((v) => v.reduce((a, b) => a + b, 0) / v.length),
    range: { low: at((v) => Math.min(...v)), high: at((v) => Math.max(...v)) }
  }
}

const trainingCurves = (results: StudyResults): ReadonlyArray<SvgChart> => {
  const trained = results.strategies.filter((s) => s.replicates.some((r) => r.trainingLog.length > 0))
  const metrics = new Set<string>()
  for (const s of trained) {
    for (const r of s.replicates) {
      for (const line of r.trainingLog) for (const [k, v] of Object.entries(line)) if (k !== "step" && typeof v === "number") metrics.add(k)
    }
  }
  // The held-out validation loss is drawn dashed in the training loss's chart, not in one of its own.
  const validation = trained
    .map((s) => ({ label: `${s.name} (validation)`, colour: s.colour, ...curveOf(s, trainingMetrics.validationLoss) }))
    .filter((s) => s.points.length > 0)
  if (validation.length > 0) metrics.add(trainingMetrics.loss)
  metrics.delete(trainingMetrics.validationLoss)
  return [...metrics]
    .sort((a, b) => metricOrder(a) - metricOrder(b) || a.localeCompare(b))
    .map((metric) =>
      trainingCurveChart({
        id: `training-${metric.replace(/[^a-zA-Z0-9_-]/g, "-")}`,
        metric,
        yTitle: metric === trainingMetrics.loss && validation.length > 0 ? "diffusion loss (dashed: held-out validation)" : metricTitle(metric),
        noisy: !isLearningRate(metric),
        width: chartWidth,
        height: 300,
        series: trained
          .map((s) => ({ label: s.name, colour: s.colour, ...curveOf(s, metric) }))
          .filter((s) => s.points.length > 0),
        ...(metric === trainingMetrics.loss ? { dashed: validation } : {})
      })
    )
}

/** The lead of the report: which strategy is significantly best where, and what the comparisons found. */
const summaryOf = (results: StudyResults): ReadonlyArray<string> => {
  const columns = presentColumns(results)
  const wins = results.strategies.map((s) =>
    columns.filter((c) => {
      const best = results.statistics.best[c.id]
      return best !== undefined && best.significant && best.strategy === s.name
    }).length
  )
  const top = Math.max(...wins)
  const leaders = results.strategies.filter((_, r) => wins[r] === top).map((s) => strategyLabel(s))
  const bestIn = (id: string, label: string) => {
    const best = results.statistics.best[id]
    if (best === undefined) return undefined
    return `${label}: ${best.strategy}${best.significant ? "" : " (not significantly)"}`
  }
  const real = results.statistics.comparisons.flatMap((c) => c.lines.filter((l) => l.verdict === "better" || l.verdict === "worse")).length
  const tested = results.statistics.comparisons.flatMap((c) => c.lines.filter((l) => l.verdict !== "not tested")).length
  const level = Math.round(results.statistics.level * 100)
  return [
    `${results.strategies.length} ${
      results.strategies.length === 1 ? "strategy" : "strategies"
    } compared on ${columns.length} metrics, each with its ${level} % confidence interval. ` +
    (results.strategies.length < 2
      ? ""
      : top === 0
      ? "No strategy is significantly better than every other on any metric."
      : `Significantly best on the most metrics: ${leaders.join(", ")} (${top} of ${columns.length}).`),
    [
      bestIn(evaluationMetrics.wasserstein.id, evaluationMetrics.wasserstein.label),
      bestIn(evaluationMetrics.glcmCanberra.id, evaluationMetrics.glcmCanberra.label),
      bestIn(evaluationMetrics.clipSeen.id, evaluationMetrics.clipSeen.label),
      bestIn(evaluationMetrics.clipUnseen.id, evaluationMetrics.clipUnseen.label),
      bestIn(evaluationMetrics.gapSeen.id, `prompt-following ${evaluationMetrics.gapSeen.label}`),
      bestIn(evaluationMetrics.gapUnseen.id, `prompt-following ${evaluationMetrics.gapUnseen.label}`)
    ].filter((t) => t !== undefined).join("; ") + ".",
    ...(tested === 0 ? [] : [`${real} of ${tested} tested differences in "Which differences are real" are real (Holm-corrected within each comparison).`])
  ].filter((t) => t.trim() !== "." && t.trim() !== "")
}

export const reportContent = (results: StudyResults): ReportContent => {
  const metrics = metricTable(results)
  const promptFollowing = promptFollowingTable(results)
  const alignment = alignmentTable(results)
  const chart = alignmentBars(results)
  const replicates = replicatesTable(results, presentColumns(results))
  const comparisons = results.statistics.comparisons
  return {
    study: results.study,
    summary: summaryOf(results),
    tables: {
      strategies: strategyTable(results),
      metrics,
      ...(promptFollowing === undefined ? {} : { promptFollowing }),
      texture: textureTable(results),
      paired: pairedTables(results),
      ...(alignment === undefined ? {} : { alignment }),
      ...(replicates === undefined ? {} : { replicates }),
      runFacts: runFactsTable(results)
    },
    verdicts: {
      tables: comparisons.filter((c) => c.incomparable === undefined).map((c) => verdictTable(results, c)),
      notCompared: comparisons.filter((c) => c.incomparable !== undefined).map((c) => `${c.a} against ${c.b}: not compared, ${c.incomparable}.`)
    },
    distributions: distributionCharts(results),
    glcmPanels: glcmPanels(results),
    ...(chart === undefined ? {} : { alignment: chart }),
    trainingCurves: trainingCurves(results),
    validationImages: results.strategies.flatMap((s) => s.replicates.flatMap((r) => r.validationImages.map((image) => ({ strategy: r.name, ...image })))),
    grid: imageGrid(results),
    conditioned: conditionedSections(results)
  }
}
