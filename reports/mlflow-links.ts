import type { StudyResults } from "./study-results.ts"

/** The MLflow UI page of a run on a tracking server. */
export const runUrl = (server: string, experimentId: string, runId: string) =>
  `${server.replace(/\/+$/, "")}/#/experiments/${encodeURIComponent(experimentId)}/runs/${encodeURIComponent(runId)}`

/** Shell quoting for a path in a command the reader copies. */
const shellQuoted = (path: string) => (/^[\w./:@%+=,-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`)

/**
 * How to reach the runs: the server, or for a local folder the command that serves it (MLflow 3.13+
 * opens a file store only with MLFLOW_ALLOW_FILE_STORE=true, DESIGN §8).
 */
export const trackingNote = (results: StudyResults): string => {
  const tracking = results.tracking
  if (tracking === undefined) return "No MLflow runs were given to this report."
  if (tracking.kind === "server") return `Runs on the MLflow server ${tracking.target}, experiment ${tracking.experimentId}; the run ids link to them.`
  return `Runs in the local MLflow folder ${tracking.target} (experiment ${tracking.experimentId}). To browse them: ` +
    `\`MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri ${shellQuoted(tracking.target)}\`, then open ` +
    `http://127.0.0.1:5000/#/experiments/${tracking.experimentId} and the runs of the table.`
}
