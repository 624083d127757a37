import { Schema } from "effect"

/*
 * The parts of MLflow's REST answers sardine reads (mlflow/protos/service.proto, protobuf JSON mapping):
 * int64 fields may come as numbers or strings, doubles as numbers or "NaN" / "Infinity" / "-Infinity".
 */

const Int64 = Schema.Union(Schema.Number, Schema.NumberFromString)

/** protobuf JSON's spelling of the non-finite doubles; MLflow's server parses exactly these. */
export const encodeDouble = (value: number): number | string =>
  Number.isNaN(value) ? "NaN" : value === Infinity ? "Infinity" : value === -Infinity ? "-Infinity" : value

const Double = Schema.Union(
  Schema.Number,
  Schema.transform(Schema.Literal("NaN", "Infinity", "-Infinity"), Schema.Number, {
    strict: true,
    decode: (s) => (s === "NaN" ? NaN : s === "Infinity" ? Infinity : -Infinity),
    encode: (n) => (Number.isNaN(n) ? "NaN" as const : n > 0 ? "Infinity" as const : "-Infinity" as const)
  })
)

const KeyValue = Schema.Struct({ key: Schema.String, value: Schema.optionalWith(Schema.String, { default: () => "" }) })

export const ExperimentMessage = Schema.Struct({
  experiment_id: Schema.String,
  name: Schema.String,
  lifecycle_stage: Schema.optional(Schema.String),
  artifact_location: Schema.optional(Schema.String)
})

export const GetExperimentResponse = Schema.Struct({ experiment: ExperimentMessage })
export const CreateExperimentResponse = Schema.Struct({ experiment_id: Schema.String })

export const RunInfoMessage = Schema.Struct({
  run_id: Schema.String,
  experiment_id: Schema.String,
  run_name: Schema.optional(Schema.String),
  status: Schema.optional(Schema.String),
  start_time: Schema.optional(Int64),
  end_time: Schema.optional(Int64),
  artifact_uri: Schema.optional(Schema.String),
  lifecycle_stage: Schema.optional(Schema.String)
})

export const MetricMessage = Schema.Struct({
  key: Schema.String,
  value: Schema.optionalWith(Double, { default: () => 0 }),
  timestamp: Schema.optionalWith(Int64, { default: () => 0 }),
  step: Schema.optionalWith(Int64, { default: () => 0 })
})

export const DatasetInputMessage = Schema.Struct({
  tags: Schema.optionalWith(Schema.Array(KeyValue), { default: () => [] }),
  dataset: Schema.Struct({
    name: Schema.String,
    digest: Schema.String,
    source_type: Schema.String,
    source: Schema.String,
    schema: Schema.optional(Schema.String),
    profile: Schema.optional(Schema.String)
  })
})

export const RunMessage = Schema.Struct({
  info: RunInfoMessage,
  data: Schema.optionalWith(
    Schema.Struct({
      params: Schema.optionalWith(Schema.Array(KeyValue), { default: () => [] }),
      tags: Schema.optionalWith(Schema.Array(KeyValue), { default: () => [] }),
      metrics: Schema.optionalWith(Schema.Array(MetricMessage), { default: () => [] })
    }),
    { default: () => ({ params: [], tags: [], metrics: [] }) }
  ),
  inputs: Schema.optionalWith(
    Schema.Struct({ dataset_inputs: Schema.optionalWith(Schema.Array(DatasetInputMessage), { default: () => [] }) }),
    { default: () => ({ dataset_inputs: [] }) }
  )
})
export type RunMessage = typeof RunMessage.Type

export const GetRunResponse = Schema.Struct({ run: RunMessage })
export const CreateRunResponse = Schema.Struct({ run: RunMessage })
export const SearchRunsResponse = Schema.Struct({
  runs: Schema.optionalWith(Schema.Array(RunMessage), { default: () => [] }),
  next_page_token: Schema.optional(Schema.String)
})
export const MetricHistoryResponse = Schema.Struct({
  metrics: Schema.optionalWith(Schema.Array(MetricMessage), { default: () => [] }),
  next_page_token: Schema.optional(Schema.String)
})
export const ListArtifactsResponse = Schema.Struct({
  files: Schema.optionalWith(
    Schema.Array(Schema.Struct({
      path: Schema.String,
      is_dir: Schema.optionalWith(Schema.Boolean, { default: () => false }),
      file_size: Schema.optionalWith(Int64, { default: () => 0 })
    })),
    { default: () => [] }
  )
})
export const ErrorResponse = Schema.Struct({ error_code: Schema.optional(Schema.String), message: Schema.optional(Schema.String) })

export const tagMap = (entries: ReadonlyArray<{ readonly key: string; readonly value: string }>): Record<string, string> =>
  Object.fromEntries(entries.map((e) => [e.key, e.value]))
