import {
  MAX_BATCH_BODY_BYTES,
  MAX_ENTITIES_PER_BATCH,
  MAX_METRICS_PER_BATCH,
  MAX_PARAMS_PER_BATCH,
  MAX_TAGS_PER_BATCH
} from "../../framework/tracking/mlflow-limits.ts"
import { encodeDouble } from "./rest-messages.ts"

export interface StampedMetric {
  readonly key: string
  readonly value: number
  readonly step: number
  readonly timestamp: number
}

export interface KeyValue {
  readonly key: string
  readonly value: string
}

/** The body of one `runs/log-batch` request. */
export interface LogBatchBody {
  readonly run_id: string
  readonly metrics: ReadonlyArray<{ key: string; value: number | string; timestamp: number; step: number }>
  readonly params: ReadonlyArray<KeyValue>
  readonly tags: ReadonlyArray<KeyValue>
}

// Room for the envelope ({"run_id":"…","metrics":[],"params":[],"tags":[]}) and a margin.
const ENVELOPE_BYTES = 1024

/**
 * Packs params, tags and metrics into as few log-batch bodies as MLflow accepts: at most 1000 metrics,
 * 100 params, 100 tags and 1000 items per request, and a JSON body under 1 MB. Order is kept within each kind.
 */
export const chunkLogBatch = (
  runId: string,
  items: {
    readonly params?: ReadonlyArray<KeyValue>
    readonly tags?: ReadonlyArray<KeyValue>
    readonly metrics?: ReadonlyArray<StampedMetric>
  }
): ReadonlyArray<LogBatchBody> => {
  const bodies: Array<LogBatchBody> = []
  let metrics: Array<LogBatchBody["metrics"][number]> = []
  let params: Array<KeyValue> = []
  let tags: Array<KeyValue> = []
  let bytes = ENVELOPE_BYTES + runId.length
  const close = () => {
    if (metrics.length + params.length + tags.length > 0) bodies.push({ run_id: runId, metrics, params, tags })
    metrics = []
    params = []
    tags = []
    bytes = ENVELOPE_BYTES + runId.length
  }
  const fits = (size: number, kindCount: number, kindLimit: number) =>
    kindCount < kindLimit &&
    metrics.length + params.length + tags.length < MAX_ENTITIES_PER_BATCH &&
    bytes + size <= MAX_BATCH_BODY_BYTES
  const add = <T>(list: () => Array<T>, limit: number, item: T) => {
    const size = Buffer.byteLength(JSON.stringify(item)) + 1
    if (!fits(size, list().length, limit)) close()
    list().push(item)
    bytes += size
  }
  for (const p of items.params ?? []) add(() => params, MAX_PARAMS_PER_BATCH, { key: p.key, value: p.value })
  for (const t of items.tags ?? []) add(() => tags, MAX_TAGS_PER_BATCH, { key: t.key, value: t.value })
  for (const m of items.metrics ?? []) {
    add(() => metrics, MAX_METRICS_PER_BATCH, { key: m.key, value: encodeDouble(m.value), timestamp: m.timestamp, step: m.step })
  }
  close()
  return bodies
}
