/*
 * Reads what a server stored through MLflow's REST API directly (plain fetch, none of sardine's client code),
 * so the tests check the server's view, not sardine's idea of it.
 */

export interface StoredRun {
  readonly info: {
    readonly run_id: string
    readonly experiment_id: string
    readonly run_name?: string
    readonly status: string
    readonly start_time?: number
    readonly end_time?: number
    readonly artifact_uri: string
  }
  readonly params: Record<string, string>
  readonly tags: Record<string, string>
  readonly datasets: ReadonlyArray<{
    readonly name: string
    readonly digest: string
    readonly source_type: string
    readonly source: string
    readonly context?: string
  }>
}

export interface StoredPoint {
  readonly step: number
  readonly value: number
  readonly timestamp: number
}

const headersFor = (auth?: string): Record<string, string> => (auth === undefined ? {} : { authorization: auth })

export const getJson = async (uri: string, endpoint: string, query: Record<string, string | number>, auth?: string): Promise<any> => {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)])).toString()
  const res = await fetch(`${uri}/api/2.0/mlflow/${endpoint}?${qs}`, { headers: headersFor(auth) })
  const body = await res.json()
  if (!res.ok) throw new Error(`${endpoint}: ${res.status} ${JSON.stringify(body)}`)
  return body
}

export const postJson = async (uri: string, endpoint: string, body: unknown, auth?: string): Promise<any> => {
  const res = await fetch(`${uri}/api/2.0/mlflow/${endpoint}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headersFor(auth) },
    body: JSON.stringify(body)
  })
  const json = await res.json()
  if (!res.ok) throw new Error(`${endpoint}: ${res.status} ${JSON.stringify(json)}`)
  return json
}

const kv = (list: ReadonlyArray<{ key: string; value?: string }> | undefined) => Object.fromEntries((list ?? []).map((e) => [e.key, e.value ?? ""]))

export const readRun = async (uri: string, runId: string, auth?: string): Promise<StoredRun> => {
  const { run } = await getJson(uri, "runs/get", { run_id: runId }, auth)
  return {
    info: run.info,
    params: kv(run.data?.params),
    tags: kv(run.data?.tags),
    datasets: (run.inputs?.dataset_inputs ?? []).map((d: any) => ({
      ...d.dataset,
      context: kv(d.tags)["mlflow.data.context"]
    }))
  }
}

/** protobuf JSON doubles: numbers, or "NaN" / "Infinity" / "-Infinity". */
const double = (v: number | string): number =>
  typeof v === "number" ? v : v === "NaN" ? NaN : v === "Infinity" ? Infinity : v === "-Infinity" ? -Infinity : Number(v)

/** The full history of one metric, every page. */
export const readHistory = async (uri: string, runId: string, key: string, auth?: string): Promise<Array<StoredPoint>> => {
  const out: Array<StoredPoint> = []
  let token: string | undefined
  do {
    const body = await getJson(uri, "metrics/get-history", {
      run_id: runId,
      metric_key: key,
      max_results: 25000,
      ...(token === undefined ? {} : { page_token: token })
    }, auth)
    for (const m of body.metrics ?? []) out.push({ step: Number(m.step ?? 0), value: double(m.value), timestamp: Number(m.timestamp ?? 0) })
    token = body.next_page_token
  } while (token !== undefined && token !== "")
  return out.sort((a, b) => a.step - b.step || a.timestamp - b.timestamp)
}

export const searchRuns = async (uri: string, experimentId: string, filter: string, auth?: string): Promise<Array<any>> => {
  const body = await postJson(uri, "runs/search", { experiment_ids: [experimentId], filter, max_results: 1000 }, auth)
  return body.runs ?? []
}

/** Bytes of an artifact through the server's artifact proxy. */
export const downloadArtifact = async (uri: string, artifactUri: string, path: string, auth?: string): Promise<Buffer> => {
  const root = artifactUri.replace(/^mlflow-artifacts:(\/\/[^/]*)?\/*/, "")
  const res = await fetch(`${uri}/api/2.0/mlflow-artifacts/artifacts/${root}/${path.split("/").map(encodeURIComponent).join("/")}`, {
    headers: headersFor(auth)
  })
  if (!res.ok) throw new Error(`download ${path}: ${res.status} ${await res.text()}`)
  return Buffer.from(await res.arrayBuffer())
}

/** Every artifact file of a run, recursively, as "/"-separated paths. */
export const listArtifacts = async (uri: string, runId: string, path = "", auth?: string): Promise<Array<{ path: string; size: number }>> => {
  const body = await getJson(uri, "artifacts/list", { run_id: runId, ...(path === "" ? {} : { path }) }, auth)
  const out: Array<{ path: string; size: number }> = []
  for (const f of body.files ?? []) {
    if (f.is_dir) { for (const inner of await listArtifacts(uri, runId, f.path, auth)) out.push(inner) }
    else out.push({ path: f.path, size: Number(f.file_size ?? 0) })
  }
  return out.sort((a, b) => a.path.localeCompare(b.path))
}
