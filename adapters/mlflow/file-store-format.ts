import { createHash } from "node:crypto"
import { pathToFileURL } from "node:url"
import YAML from "yaml"
import type { RunStatus } from "../../framework/services/tracker.ts"

/*
 * MLflow's file store layout (mlflow/store/tracking/file_store.py, MLflow 3.x):
 *   <root>/<exp_id>/meta.yaml                       experiment: artifact_location, creation_time, experiment_id,
 *                                                   last_update_time, lifecycle_stage, name
 *   <root>/<exp_id>/tags/<key>                       experiment tags
 *   <root>/<exp_id>/datasets/<md5(name+digest)>/meta.yaml   digest, name, profile, schema, source, source_type
 *   <root>/<exp_id>/<run_id>/meta.yaml               run info; status as an integer (RunStatus enum)
 *   <root>/<exp_id>/<run_id>/metrics/<key>           lines "<timestamp_ms> <value> <step>"
 *   <root>/<exp_id>/<run_id>/params/<key>, tags/<key>   the value, no trailing newline
 *   <root>/<exp_id>/<run_id>/inputs/<md5(dataset_id+run_id)>/meta.yaml   links a dataset to the run
 *   <root>/<exp_id>/<run_id>/artifacts/…
 *   <root>/.trash/                                   deleted experiments
 * Keys containing "/" are nested folders. The default experiment "0" ("Default") exists from the start.
 */

export const DEFAULT_EXPERIMENT_ID = "0"
export const DEFAULT_EXPERIMENT_NAME = "Default"
export const TRASH_FOLDER = ".trash"
/** Experiment sub-folders that are not runs. */
export const RESERVED_EXPERIMENT_FOLDERS = new Set(["tags", "datasets", "traces", "models"])

/** mlflow.entities.RunStatus. */
const STATUS_CODES: Readonly<Record<RunStatus, number>> = { RUNNING: 1, SCHEDULED: 2, FINISHED: 3, FAILED: 4, KILLED: 5 }
/** mlflow.entities.SourceType.LOCAL, which the file store writes for every run. */
const SOURCE_TYPE_LOCAL = 4

export const statusCode = (status: RunStatus): number => STATUS_CODES[status]
export const statusName = (code: unknown): RunStatus => {
  const found = (Object.keys(STATUS_CODES) as Array<RunStatus>).find((s) => STATUS_CODES[s] === code || s === code)
  return found ?? "RUNNING"
}

export interface ExperimentMeta {
  readonly experiment_id: string
  readonly name: string
  readonly artifact_location: string
  readonly lifecycle_stage: string
  readonly creation_time: number
  readonly last_update_time: number
}

export interface RunMeta {
  readonly run_id: string
  readonly experiment_id: string
  readonly run_name: string
  readonly user_id: string
  readonly status: RunStatus
  readonly start_time: number
  readonly end_time: number | null
  readonly artifact_uri: string
  readonly lifecycle_stage: string
}

export const dumpYaml = (value: Record<string, unknown>): string => YAML.stringify(value, { sortMapEntries: true, lineWidth: 0 })

export const experimentMetaYaml = (meta: ExperimentMeta): string => dumpYaml({ ...meta })

/** The same fields, in the same form, as `_make_persisted_run_info_dict` writes. */
export const runMetaYaml = (meta: RunMeta): string =>
  dumpYaml({
    artifact_uri: meta.artifact_uri,
    end_time: meta.end_time,
    entry_point_name: "",
    experiment_id: meta.experiment_id,
    lifecycle_stage: meta.lifecycle_stage,
    run_id: meta.run_id,
    run_name: meta.run_name,
    source_name: "",
    source_type: SOURCE_TYPE_LOCAL,
    source_version: "",
    start_time: meta.start_time,
    status: statusCode(meta.status),
    tags: [],
    user_id: meta.user_id
  })

const text = (value: unknown): string => (value === null || value === undefined ? "" : String(value))
const integer = (value: unknown): number => (typeof value === "number" ? value : Number(value ?? 0))

/** Reads an experiment's meta.yaml as MLflow would (legacy integer ids become strings). */
export const parseExperimentMeta = (raw: unknown): ExperimentMeta | undefined => {
  if (raw === null || typeof raw !== "object") return undefined
  const r = raw as Record<string, unknown>
  if (r.experiment_id === undefined || r.name === undefined) return undefined
  return {
    experiment_id: text(r.experiment_id),
    name: text(r.name),
    artifact_location: text(r.artifact_location),
    lifecycle_stage: text(r.lifecycle_stage ?? "active"),
    creation_time: integer(r.creation_time),
    last_update_time: integer(r.last_update_time)
  }
}

export const parseRunMeta = (raw: unknown): RunMeta | undefined => {
  if (raw === null || typeof raw !== "object") return undefined
  const r = raw as Record<string, unknown>
  const runId = r.run_id ?? r.run_uuid
  if (runId === undefined || r.experiment_id === undefined) return undefined
  return {
    run_id: text(runId),
    experiment_id: text(r.experiment_id),
    run_name: text(r.run_name),
    user_id: text(r.user_id),
    status: statusName(r.status ?? 1),
    start_time: integer(r.start_time),
    end_time: r.end_time === null || r.end_time === undefined ? null : integer(r.end_time),
    artifact_uri: text(r.artifact_uri),
    lifecycle_stage: text(r.lifecycle_stage ?? "active")
  }
}

/** Python's str(float) for the non-finite values, so MLflow's float() reads every line back. */
export const metricValueText = (value: number): string =>
  Number.isNaN(value) ? "nan" : value === Infinity ? "inf" : value === -Infinity ? "-inf" : String(value)

export const metricLine = (point: { readonly timestamp: number; readonly value: number; readonly step: number }): string =>
  `${point.timestamp} ${metricValueText(point.value)} ${point.step}\n`

/** One line of a metrics file: 2, 3 or 5 fields like `_get_metric_from_line`; undefined when malformed. */
export const parseMetricLine = (line: string): { timestamp: number; value: number; step: number } | undefined => {
  const parts = line.trim().split(" ")
  if (parts.length !== 2 && parts.length !== 3 && parts.length !== 5) return undefined
  const timestamp = Number(parts[0])
  // The length check above keeps parts[1] in range.
  const v = parts[1]!.toLowerCase()
  const value = v === "nan" ? NaN : v === "inf" || v === "infinity" ? Infinity : v === "-inf" || v === "-infinity" ? -Infinity : Number(parts[1])
  const step = parts.length >= 3 ? Number(parts[2]) : 0
  if (!Number.isInteger(timestamp) || !Number.isInteger(step) || (Number.isNaN(value) && v !== "nan")) return undefined
  return { timestamp, value, step }
}

const md5 = (...parts: ReadonlyArray<string>): string => {
  const h = createHash("md5")
  for (const p of parts) h.update(p, "utf8")
  return h.digest("hex")
}

/** FileStore._get_dataset_id and _get_dataset_input_id. */
export const datasetId = (name: string, digest: string): string => md5(name, digest)
export const datasetInputId = (datasetIdValue: string, runId: string): string => md5(datasetIdValue, runId)

/**
 * A stable id for an experiment name, digits only like MLflow's own (< 2^60): two processes creating the
 * same experiment at once write the same folder instead of two experiments with one name.
 */
export const experimentIdFor = (name: string, attempt: number): string => {
  const hex = createHash("sha256").update(attempt === 0 ? name : `${name}\u0000${attempt}`).digest("hex").slice(0, 15)
  return BigInt(`0x${hex}`).toString(10)
}

export const fileUri = (path: string): string => pathToFileURL(path).href
