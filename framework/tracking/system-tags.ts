/** Tags MLflow's own clients set on every run (mlflow/utils/mlflow_tags.py), plus sardine's. */
export const MLFLOW_RUN_NAME = "mlflow.runName"
export const MLFLOW_USER = "mlflow.user"
export const MLFLOW_SOURCE_NAME = "mlflow.source.name"
export const MLFLOW_SOURCE_TYPE = "mlflow.source.type"
export const MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"
export const MLFLOW_PARENT_RUN_ID = "mlflow.parentRunId"
export const MLFLOW_LOGGED_IMAGES = "mlflow.loggedImages"
export const SARDINE_VERSION = "sardine.version"
export const SARDINE_BACKEND = "sardine.backend"
export const SARDINE_HOST = "sardine.host"
/** The cache folder a run's outputs are in (for people: runs are found by the cache's id, see cache-identity.ts). */
export const SARDINE_CACHE = "sardine.cache"

export interface SystemTagsInput {
  readonly runName: string
  readonly sardineVersion: string
  readonly user: string
  readonly host: string
  /** The declaration file the run comes from. */
  readonly sourceName: string
  /** Commit of the repository holding the declaration file, when it is in one. */
  readonly gitCommit?: string | undefined
  /** The engine backend ("wasm", "cpu", "tensorflow"), for runs that use one. */
  readonly backend?: string | undefined
  readonly parentRunId?: string
  /** The cache folder, absolute. */
  readonly cacheDir?: string
}

/** The tags that say where a run comes from. `mlflow.source.type` is LOCAL: sardine runs a local file. */
export const systemTags = (input: SystemTagsInput): Record<string, string> => ({
  [MLFLOW_RUN_NAME]: input.runName,
  [MLFLOW_USER]: input.user,
  [MLFLOW_SOURCE_NAME]: input.sourceName,
  [MLFLOW_SOURCE_TYPE]: "LOCAL",
  [SARDINE_VERSION]: input.sardineVersion,
  [SARDINE_HOST]: input.host,
  ...(input.gitCommit === undefined ? {} : { [MLFLOW_GIT_COMMIT]: input.gitCommit }),
  ...(input.backend === undefined ? {} : { [SARDINE_BACKEND]: input.backend }),
  ...(input.parentRunId === undefined ? {} : { [MLFLOW_PARENT_RUN_ID]: input.parentRunId }),
  ...(input.cacheDir === undefined ? {} : { [SARDINE_CACHE]: input.cacheDir })
})
