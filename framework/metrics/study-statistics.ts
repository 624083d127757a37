import { Effect } from "effect"
import { comparedValue, type ResamplingProgress, type UncertaintySettings } from "./evaluation-intervals.ts"
import { EVALUATION_METRICS, type MetricDirection } from "./metric-catalog.ts"
import { holmAdjusted } from "./multiple-testing.ts"
import type { PairedComparison } from "./paired-intervals.ts"
import type { EstimateDefinition } from "./resampled-estimates.ts"
import { compareStrategies, type ComparisonTest, Incomparable, type PairComparison, type StrategyEvidence } from "./strategy-comparison.ts"
import { meanInterval, sampleMean, sampleStandardDeviation } from "./t-tests.ts"

/**
 * What a study's evidence says: each strategy's estimates with intervals (over training seeds
 * when it was replicated), the declared comparisons with a verdict per metric, and, per table
 * cell kind, whether the best strategy is really better than every other.
 *
 * Multiple comparisons: within each comparison, the p-values of its metrics are adjusted by
 * Holm's method. Holm rather than Benjamini–Hochberg because each verdict is read and quoted on
 * its own ("the token makes no detectable difference to KS"), so the guarantee should be per
 * claim — the family-wise error rate — and because the metrics are strongly dependent in both
 * directions (the amplitude distances move together; CLIP scores against them), where Holm's
 * guarantee holds under any dependence and Benjamini–Hochberg's needs positive dependence.
 * Each comparison is a question the study asks (a declared pair, or a strategy against the
 * baseline), so the family is that comparison's metrics.
 */

export interface StrategyEstimate {
  readonly value: number
  readonly low: number
  readonly high: number
  readonly standardError: number
  /** "bootstrap": one run, interval over its noise draws; "t": the mean over training seeds, Student-t interval. */
  readonly method: "bootstrap" | "t" | "none"
  /** With training replicates: the standard deviation between them, and each one's value. */
  readonly seedSpread?: number
  readonly replicateValues?: ReadonlyArray<number>
}

export interface StrategyStatistics {
  readonly name: string
  readonly replicates: number
  readonly definitions: ReadonlyArray<EstimateDefinition>
  readonly estimates: Readonly<Record<string, StrategyEstimate>>
}

export type Verdict = "better" | "worse" | "no detectable difference" | "not tested"

export interface VerdictLine {
  readonly id: string
  readonly label: string
  readonly direction: MetricDirection
  readonly difference: number
  readonly low: number
  readonly high: number
  readonly p: number
  /** Holm-adjusted within the comparison. */
  readonly pAdjusted: number
  /** Of `a` against `b`. */
  readonly verdict: Verdict
}

export interface StrategyComparisonReport {
  readonly a: string
  readonly b: string
  readonly why: "baseline" | "declared"
  readonly test?: ComparisonTest
  readonly units?: readonly [number, number]
  readonly permutations?: PairComparison["permutations"]
  /** Set when the two cannot be compared (different reference sets, no evaluation). */
  readonly incomparable?: string
  readonly lines: ReadonlyArray<VerdictLine>
  /** The Holm threshold of the smallest p-value, α / m. */
  readonly strictestThreshold?: number
  readonly notes: ReadonlyArray<string>
}

export interface BestMark {
  readonly strategy: string
  /** Significantly better than every other strategy with a value (Holm across those tests). */
  readonly significant: boolean
}

export interface StudyStatistics {
  readonly level: number
  readonly resamples: number
  readonly seed: number
  readonly strategies: ReadonlyArray<StrategyStatistics>
  readonly comparisons: ReadonlyArray<StrategyComparisonReport>
  /** Per estimate id, the strategy with the best value, when one is best. */
  readonly best: Readonly<Record<string, BestMark>>
  /** Conditioned strategies against each other on their paired metrics, pair by pair (paired-intervals.ts); absent with fewer than two. */
  readonly paired?: ReadonlyArray<PairedComparison<string>>
}

/** One strategy's estimates: its run's bootstrap intervals, or the mean over training seeds. */
export const strategyStatistics = (strategy: StrategyEvidence, definitions: ReadonlyArray<EstimateDefinition>, level: number): StrategyStatistics => {
  const estimates: Record<string, StrategyEstimate> = {}
  for (const { id } of definitions) {
    const found = strategy.replicates.map((r) => r.estimates[id]).filter((e) => e !== undefined)
    const finite = found.filter((e) => Number.isFinite(e.value))
    if (finite.length >= 2) {
      const values = finite.map((e) => e.value)
      const interval = meanInterval(sampleMean(values), level)
      estimates[id] = {
        value: interval.estimate,
        low: interval.low,
        high: interval.high,
        standardError: interval.standardError,
        method: "t",
        seedSpread: sampleStandardDeviation(values),
        replicateValues: values
      }
    } else if (found[0] !== undefined) {
      const only = finite[0] ?? found[0]
      estimates[id] = {
        value: only.value,
        low: only.low,
        high: only.high,
        standardError: only.standardError,
        method: only.method === "none" ? "none" : "bootstrap"
      }
    }
  }
  return { name: strategy.name, replicates: strategy.replicates.length, definitions, estimates }
}

const alphaOf = (level: number) => 1 - level

const favours = (direction: MetricDirection, difference: number) => (direction === "higher" ? difference > 0 : difference < 0)

/** Verdict lines of a comparison: the report's metrics, Holm-adjusted together. */
const verdictLines = (comparison: PairComparison, level: number): ReadonlyArray<VerdictLine> => {
  const metricIds = new Set(EVALUATION_METRICS.map((m) => m.id))
  const definitions = comparison.definitions.filter((d) => metricIds.has(d.id as never))
  const ordered = EVALUATION_METRICS.flatMap((m) => definitions.filter((d) => d.id === m.id))
  // A comparison holds a difference for each of its definitions.
  const p = ordered.map((d) => comparison.differences[d.id]!.p)
  const adjusted = holmAdjusted(p)
  return ordered.map((d, i): VerdictLine => {
    const { difference, high, low } = comparison.differences[d.id]!
    const verdict: Verdict = Number.isNaN(adjusted[i]!)
      ? "not tested"
      : adjusted[i]! <= alphaOf(level) && difference !== 0
      ? favours(d.direction, difference) ? "better" : "worse"
      : "no detectable difference"
    return { id: d.id, label: d.label, direction: d.direction, difference, low, high, p: p[i]!, pAdjusted: adjusted[i]!, verdict }
  })
}

/** The comparison the other way round: differences negated, intervals mirrored, same p-values. */
const reversed = (comparison: PairComparison): PairComparison => ({
  ...comparison,
  units: [comparison.units[1], comparison.units[0]],
  differences: Object.fromEntries(
    Object.entries(comparison.differences).map(([id, d]) => [id, { difference: -d.difference, low: -d.high, high: -d.low, p: d.p }])
  )
})

export interface StudyStatisticsRequest {
  readonly strategies: ReadonlyArray<StrategyEvidence>
  /** Estimates each strategy has, in the order its evaluations list them. */
  readonly definitions: ReadonlyArray<ReadonlyArray<EstimateDefinition>>
  readonly baseline?: string
  /** Declared pairs, each compared a against b. */
  readonly compare: ReadonlyArray<readonly [string, string]>
  readonly settings: UncertaintySettings
  /** Called as each comparison resamples: which pair, and how far. */
  readonly progress?: (pair: string, done: number, total: number) => Effect.Effect<void>
}

export const studyStatistics = (request: StudyStatisticsRequest): Effect.Effect<StudyStatistics> =>
  Effect.gen(function*() {
    const { settings, strategies } = request
    const byName = new Map(strategies.map((s, i) => [s.name, i]))
    const computed = new Map<string, PairComparison | Incomparable>()
    /** a against b, computed once per unordered pair in study order (so both directions agree). */
    const pair = (a: number, b: number, intervals: boolean): Effect.Effect<PairComparison | Incomparable> =>
      Effect.gen(function*() {
        const [first, second] = a < b ? [a, b] : [b, a]
        const key = `${first}/${second}`
        const held = computed.get(key)
        const usable = held !== undefined && (held instanceof Incomparable || !intervals || Object.values(held.differences).some((d) => !Number.isNaN(d.low)))
        const label = `${strategies[first]!.name} vs ${strategies[second]!.name}`
        const progress: ResamplingProgress = (done, total) => request.progress?.(label, done, total) ?? Effect.yieldNow()
        const result = usable ? held! : yield* compareStrategies(strategies[first]!, strategies[second]!, settings, intervals, progress)
        computed.set(key, result)
        return result instanceof Incomparable || a === first ? result : reversed(result)
      })

    const questions: Array<{ a: string; b: string; why: "baseline" | "declared" }> = []
    if (request.baseline !== undefined) {
      for (const s of strategies) if (s.name !== request.baseline) questions.push({ a: s.name, b: request.baseline, why: "baseline" })
    }
    for (const [a, b] of request.compare) {
      if (!questions.some((q) => q.a === a && q.b === b)) questions.push({ a, b, why: "declared" })
    }
    const comparisons = yield* Effect.forEach(questions, ({ a, b, why }) =>
      Effect.gen(function*(): Effect.fn.Return<StrategyComparisonReport> {
        const ia = byName.get(a)
        const ib = byName.get(b)
        if (ia === undefined || ib === undefined) {
          return { a, b, why, incomparable: `${ia === undefined ? a : b} has no finished evaluation`, lines: [], notes: [] }
        }
        const result = yield* pair(ia, ib, true)
        if (result instanceof Incomparable) return { a, b, why, incomparable: result.reason, lines: [], notes: [] }
        const lines = verdictLines(result, settings.level)
        const tested = lines.filter((l) => !Number.isNaN(l.pAdjusted)).length
        const strictestThreshold = tested === 0 ? undefined : alphaOf(settings.level) / tested
        const notes: Array<string> = []
        if (result.permutations !== undefined && strictestThreshold !== undefined && result.permutations.smallestP > strictestThreshold) {
          notes.push(
            `With ${result.units[0]} noise draws a permutation test cannot give a p-value below ${result.permutations.smallestP.toPrecision(2)}, ` +
              `and Holm's correction over ${tested} metrics needs ${
                strictestThreshold.toPrecision(2)
              } for the strongest difference: no difference can be detected. Declare more sampling seeds (generate.seeds).`
          )
        }
        if (result.test === "welch") {
          for (const side of [strategies[ia]!, strategies[ib]!]) {
            if (side.replicates.length === 1) {
              notes.push(
                `${side.name} ran once: only its sampling uncertainty enters the test (its spread between training seeds is unknown, or zero if it trains nothing).`
              )
            }
          }
        }
        return {
          a,
          b,
          why,
          test: result.test,
          units: result.units,
          ...(result.permutations === undefined ? {} : { permutations: result.permutations }),
          lines,
          ...(strictestThreshold === undefined ? {} : { strictestThreshold }),
          notes
        }
      }))

    const stats = strategies.map((s, i) => strategyStatistics(s, request.definitions[i]!, settings.level))
    const best: Record<string, BestMark> = {}
    const ids = [...new Set(request.definitions.flat().map((d) => d.id))]
    for (const id of ids) {
      const holders = stats.flatMap((s, i) => {
        const definition = s.definitions.find((d) => d.id === id)
        const value = s.estimates[id]?.value
        return definition === undefined || value === undefined || !Number.isFinite(value) ? [] : [{ i, definition, value }]
      })
      if (holders.length < 2) continue
      const badness = (h: (typeof holders)[number]) => h.definition.direction === "higher" ? -h.value : comparedValue(h.definition, h.value)
      const sorted = [...holders].sort((x, y) => badness(x) - badness(y))
      if (badness(sorted[0]!) === badness(sorted[1]!)) continue
      const winner = sorted[0]!
      const tests = yield* Effect.forEach(sorted.slice(1), (other) =>
        Effect.map(pair(winner.i, other.i, false), (result) => (result instanceof Incomparable ? undefined : result.differences[id])))
      const adjusted = holmAdjusted(tests.map((t) =>
        t?.p ?? NaN
      ))
      const significant = tests.every((t, k) =>
        t !== undefined && adjusted[k]! <= alphaOf(settings.level) && favours(winner.definition.direction, t.difference)
      )
      best[id] = { strategy: strategies[winner.i]!.name, significant }
    }
    return { level: settings.level, resamples: settings.resamples, seed: settings.seed, strategies: stats, comparisons, best } satisfies StudyStatistics
  })
