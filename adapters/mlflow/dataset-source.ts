/**
 * How MLflow's own dataset sources describe themselves (mlflow/data/http_dataset_source.py,
 * local_artifact_dataset_source.py): source_type "http" with {"url": …}, or "local" with {"uri": …}.
 */
export const datasetSource = (source: string): { readonly source_type: string; readonly source: string } =>
  /^https?:\/\//i.test(source)
    ? { source_type: "http", source: JSON.stringify({ url: source }) }
    : { source_type: "local", source: JSON.stringify({ uri: source }) }

/** The tag MLflow puts on a dataset input to say what it was used for. */
export const DATASET_CONTEXT_TAG = "mlflow.data.context"
