import { basename } from "node:path"
import { runUrl, trackingNote } from "../mlflow-links.ts"
import { formatDuration } from "../number-format.ts"
import type { StrategyResult, StudyResults } from "../study-results.ts"
import type { ReportTable, TableCell } from "./report-table.ts"

const key = (value: string | undefined): TableCell => (value === undefined ? { text: "–" } : { text: value, code: true })

type Replicate = StrategyResult["replicates"][number]

const trainSteps = (s: StrategyResult, r: Replicate): string => {
  const declared = s.strategy.train?.steps
  if (s.strategy.baseline || declared === undefined) return "–"
  // Step 0 is the held-out loss before training (train.validationLoss), not a training step.
  const logged = r.trainingLog.filter((l) => l.step > 0).length
  return logged === declared ? String(declared) : `${declared} (${logged} logged)`
}

const runCell = (results: StudyResults, runId: string | undefined): TableCell => {
  const tracking = results.tracking
  if (runId === undefined || tracking === undefined) return { text: "–" }
  return tracking.kind === "server"
    ? { text: runId, code: true, link: runUrl(tracking.target, tracking.experimentId, runId) }
    : { text: runId, code: true }
}

/** Where each result came from and what it cost, one row per training replicate: backend, budget, wall times, cache keys, runs. */
export const runFactsTable = (results: StudyResults): ReportTable => ({
  id: "run-facts",
  caption: "Run facts",
  header: [
    "run",
    "backend",
    "train steps",
    "train time",
    "generate time",
    "evaluate time",
    "images",
    "train key",
    "generate key",
    "evaluate key",
    "MLflow run"
  ],
  rows: results.strategies.flatMap((s) =>
    s.replicates.map((r): ReadonlyArray<TableCell> => [
      { text: r.name, colour: s.colour },
      { text: s.strategy.external === undefined ? s.backend ?? "not recorded" : "external" },
      { text: trainSteps(s, r) },
      { text: r.evaluation.lineage.train === undefined ? "–" : formatDuration(r.steps.train?.durationMs) },
      { text: formatDuration(r.steps.generate?.durationMs) },
      { text: formatDuration(r.steps.evaluate?.durationMs) },
      { text: `${r.evaluation.generated.images} vs ${r.evaluation.reference.images} real` },
      key(r.evaluation.lineage.train),
      key(r.evaluation.lineage.generate),
      key(basename(r.evaluationDir)),
      runCell(results, r.runId ?? (s.replicates.length === 1 ? s.runId : undefined))
    ])
  ),
  notes: [
    `Wall times from the step manifests in the cache ${results.cacheDir}; a step shared by several strategies ran once. n/a: the step is no longer in the cache.`,
    ...(results.strategies.some((s) => s.replicates.length > 1)
      ? [
        "`<experiment>#<r>`: training replicate r (replicate 1 trains with the declared seed); each has its own MLflow run under the experiment's, which carries the mean over them."
      ]
      : []),
    trackingNote(results)
  ]
})
