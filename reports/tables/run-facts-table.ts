import { runUrl, trackingNote } from "../mlflow-links.ts"
import { formatDuration } from "../number-format.ts"
import type { StrategyResult, StudyResults } from "../study-results.ts"
import type { ReportTable, TableCell } from "./report-table.ts"

const key = (value: string | undefined): TableCell => (value === undefined ? { text: "–" } : { text: value, code: true })

const trainSteps = (s: StrategyResult): string => {
  const declared = s.strategy.train?.steps
  if (s.strategy.baseline || declared === undefined) return "–"
  const logged = s.trainingLog.length
  return logged === declared ? String(declared) : `${declared} (${logged} logged)`
}

const runCell = (results: StudyResults, s: StrategyResult): TableCell => {
  const tracking = results.tracking
  if (s.runId === undefined || tracking === undefined) return { text: "–" }
  return tracking.kind === "server"
    ? { text: s.runId, code: true, link: runUrl(tracking.target, tracking.experimentId, s.runId) }
    : { text: s.runId, code: true }
}

/** Where each result came from and what it cost: backend, budget, wall time from the step manifests, cache keys, runs. */
export const runFactsTable = (results: StudyResults): ReportTable => ({
  id: "run-facts",
  caption: "Run facts",
  header: ["strategy", "backend", "train steps", "train time", "generate time", "evaluate time", "images", "train key", "generate key", "evaluate key", "MLflow run"],
  rows: results.strategies.map((s): ReadonlyArray<TableCell> => [
    { text: s.name, colour: s.colour },
    { text: s.backend ?? "not recorded" },
    { text: trainSteps(s) },
    { text: s.evaluation.lineage.train === undefined ? "–" : formatDuration(s.steps.train?.durationMs) },
    { text: formatDuration(s.steps.generate?.durationMs) },
    { text: formatDuration(s.steps.evaluate?.durationMs) },
    { text: `${s.evaluation.generated.images} vs ${s.evaluation.reference.images} real` },
    key(s.evaluation.lineage.train),
    key(s.evaluation.lineage.generate),
    key(s.evaluationKey),
    runCell(results, s)
  ]),
  notes: [
    `Wall times from the step manifests in the cache ${results.cacheDir}; a step shared by several strategies ran once. n/a: the step is no longer in the cache.`,
    trackingNote(results)
  ]
})
