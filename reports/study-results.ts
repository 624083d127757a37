import type { StrategyEstimate, StrategyStatistics, StudyStatistics } from "../framework/metrics/study-statistics.ts"
import type { ReportedReplicate, ReportedStrategy, ReportRequest, ReportTracking } from "../framework/services/report-renderer.ts"
import type { EvaluationResult } from "../framework/steps/evaluation-result.ts"
import { strategyColour } from "./strategy-colours.ts"

/** Everything the report shows about one strategy, from the request. */
export interface StrategyResult {
  readonly name: string
  readonly strategy: ReportedStrategy
  readonly colour: string
  /** Its training replicates (one without replicates), with their MLflow runs. */
  readonly replicates: ReadonlyArray<ReportedReplicate & { readonly runId?: string }>
  /** The first replicate's evaluation: previews, distributions and settings come from it. */
  readonly evaluation: EvaluationResult
  readonly evaluationDir: string
  /** Its estimates with intervals (over training seeds when replicated). */
  readonly statistics?: StrategyStatistics
  readonly backend?: string
  /** The experiment's run (the summary run of a replicated experiment). */
  readonly runId?: string
}

export interface StudyResults {
  readonly study: string
  readonly cacheDir: string
  readonly strategies: ReadonlyArray<StrategyResult>
  /** The experiment marked `baseline: true` (the first, when several are); undefined when none is. */
  readonly baseline?: StrategyResult | undefined
  readonly statistics: StudyStatistics
  readonly tracking?: ReportTracking & { readonly kind: "server" | "folder" }
}

const isServer = (target: string) => /^https?:\/\//i.test(target)

export const studyResults = (request: ReportRequest): StudyResults => {
  const tracking = request.tracking
  const strategies = request.experiments.map(({ experiment, replicates }, index): StrategyResult => {
    const runId = tracking?.runIds[experiment.name]
    const statistics = request.statistics.strategies.find((s) => s.name === experiment.name)
    return {
      name: experiment.name,
      strategy: experiment,
      colour: strategyColour(index),
      replicates: replicates.map((r) => {
        const replicateRun = tracking?.runIds[r.name]
        return replicateRun === undefined ? r : { ...r, runId: replicateRun }
      }),
      evaluation: replicates[0]!.evaluation,
      evaluationDir: replicates[0]!.evaluationDir,
      ...(statistics === undefined ? {} : { statistics }),
      ...(request.backend === undefined ? {} : { backend: request.backend }),
      ...(runId === undefined ? {} : { runId })
    }
  })
  return {
    study: request.study,
    cacheDir: request.cacheDir,
    strategies,
    baseline: strategies.find((s) => s.strategy.baseline),
    statistics: request.statistics,
    ...(tracking === undefined ? {} : { tracking: { ...tracking, kind: isServer(tracking.target) ? "server" as const : "folder" as const } })
  }
}

/** A strategy's estimate of `id`, when it has a number. */
export const estimateOf = (strategy: StrategyResult, id: string): StrategyEstimate | undefined => {
  const estimate = strategy.statistics?.estimates[id]
  return estimate !== undefined && !Number.isNaN(estimate.value) ? estimate : undefined
}

/** Whether `strategy` holds the best value of `id` and is significantly better than every other strategy there. */
export const isSignificantBest = (results: StudyResults, strategy: StrategyResult, id: string): boolean => {
  const best = results.statistics.best[id]
  return best !== undefined && best.significant && best.strategy === strategy.name
}

/** "hybrid", with training replicates "hybrid (3 seeds)", an external evaluation "gan (external)". */
export const strategyLabel = (strategy: StrategyResult): string =>
  strategy.strategy.external !== undefined
    ? `${strategy.name} (external)`
    : strategy.replicates.length > 1
    ? `${strategy.name} (${strategy.replicates.length} seeds)`
    : strategy.name
