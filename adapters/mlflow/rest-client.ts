import { Clock, Duration, Effect, Option, Redacted, Schema } from "effect"
import { TrackerError, TrackerFileError, TrackingInputError } from "../../framework/services/tracker.ts"
import { send, type HttpRequest, type HttpResponse, type RequestBody } from "./http-transport.ts"
import { ErrorResponse } from "./rest-messages.ts"

export interface RetryPolicy {
  /** Delay before the first retry; it doubles after each failed attempt… */
  readonly initialDelayMs: number
  /** …up to this. */
  readonly maxDelayMs: number
  /** No retry starts later than this after the first attempt. */
  readonly budgetMs: number
}

/** About as patient as MLflow's Python client (7 retries, factor 2): a server restart fits comfortably. */
export const defaultRetryPolicy: RetryPolicy = { initialDelayMs: 250, maxDelayMs: 10_000, budgetMs: 180_000 }

/** For a caller that queues and retries itself (a run's tracking queue): rides out a blip, not an outage. */
export const briefRetryPolicy: RetryPolicy = { initialDelayMs: 100, maxDelayMs: 400, budgetMs: 1000 }

export interface RestConfig {
  /** Server root (may include a path prefix), without credentials. */
  readonly baseUrl: URL
  /** For messages: the root URI, never with credentials. */
  readonly target: string
  readonly authorization: Option.Option<Redacted.Redacted<string>>
  readonly retry: RetryPolicy
  readonly timeoutMs: number
}

export type Env = Readonly<Record<string, string | undefined>>

/**
 * Reads the server URI and credentials the way MLflow's own clients do: `MLFLOW_TRACKING_TOKEN` (bearer)
 * wins over `MLFLOW_TRACKING_USERNAME` + `MLFLOW_TRACKING_PASSWORD` (basic), which win over credentials
 * written in the URI. Credentials end up only in a Redacted header value.
 */
export const restConfig = (
  uri: string,
  env: Env,
  overrides: { readonly retry?: RetryPolicy; readonly timeoutMs?: number } = {}
): Effect.Effect<RestConfig, TrackingInputError> =>
  Effect.gen(function*() {
    let url: URL
    try {
      url = new URL(uri)
    } catch {
      return yield* Effect.fail(new TrackingInputError({ field: "tracking URI", value: redactUri(uri), rule: "must be an http:// or https:// URL" }))
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      return yield* Effect.fail(new TrackingInputError({ field: "tracking URI", value: redactUri(uri), rule: "must be an http:// or https:// URL" }))
    }
    const inUri = url.username !== ""
      ? { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) }
      : undefined
    url.username = ""
    url.password = ""
    url.search = ""
    url.hash = ""
    url.pathname = url.pathname.replace(/\/+$/, "")
    const token = env.MLFLOW_TRACKING_TOKEN
    const username = env.MLFLOW_TRACKING_USERNAME
    const password = env.MLFLOW_TRACKING_PASSWORD
    if ((username === undefined) !== (password === undefined) && token === undefined) {
      return yield* Effect.fail(
        new TrackingInputError({
          field: username === undefined ? "MLFLOW_TRACKING_PASSWORD" : "MLFLOW_TRACKING_USERNAME",
          value: "(set)",
          rule: "needs MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD together"
        })
      )
    }
    const basic = (u: string, p: string) => Redacted.make(`Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`)
    const authorization = token !== undefined && token !== ""
      ? Option.some(Redacted.make(`Bearer ${token}`))
      : username !== undefined && password !== undefined
      ? Option.some(basic(username, password))
      : inUri !== undefined
      ? Option.some(basic(inUri.username, inUri.password))
      : Option.none()
    return {
      baseUrl: url,
      target: url.toString().replace(/\/$/, ""),
      authorization,
      retry: overrides.retry ?? defaultRetryPolicy,
      timeoutMs: overrides.timeoutMs ?? 60_000
    }
  })

/** A URI as it may appear in a message: no user, password or query. */
export const redactUri = (uri: string): string => {
  try {
    const url = new URL(uri)
    url.username = ""
    url.password = ""
    url.search = ""
    return url.toString()
  } catch {
    return uri.replace(/\/\/[^@/]*@/, "//")
  }
}

/** A failure worth another attempt (network, 429, 5xx), with the server's wish for a delay if it gave one. */
class Retryable {
  readonly _tag = "Retryable"
  constructor(readonly error: TrackerError, readonly retryAfterMs: number) {}
}

const isRetryableStatus = (status: number) => status === 429 || (status >= 500 && status !== 501)

const retryAfterMs = (response: HttpResponse): number => {
  const header = response.headers["retry-after"]
  const seconds = typeof header === "string" ? Number(header) : NaN
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds * 1000, 60_000) : 0
}

const errorFrom = (operation: string, target: string, response: HttpResponse): TrackerError => {
  const text = response.body.toString("utf8")
  let parsed: typeof ErrorResponse.Type = {}
  try {
    parsed = Schema.decodeUnknownSync(ErrorResponse)(JSON.parse(text))
  } catch {
    // Not MLflow's JSON error (a proxy's HTML page, an empty 502…): keep the start of the text.
  }
  const reason = (parsed.message ?? (text.trim().slice(0, 300) || `HTTP ${response.status}`)).slice(0, 1000)
  return new TrackerError({
    operation,
    target,
    reason,
    status: response.status,
    ...(parsed.error_code === undefined ? {} : { error_code: parsed.error_code })
  })
}

export interface RetryOptions<A> {
  /**
   * Runs before each retry; a value it finds ends the retries with that value. For requests that are not
   * idempotent (runs/create), it looks whether the lost attempt took effect after all.
   */
  readonly beforeRetry?: Effect.Effect<Option.Option<A>, TrackerError>
}

export interface RestClient {
  readonly target: string
  readonly config: RestConfig
  /** A JSON call to `/api/2.0/mlflow/<endpoint>`, retried on network errors, 429 and 5xx. */
  readonly call: <A, I>(
    endpoint: string,
    method: "GET" | "POST",
    payload: Readonly<Record<string, unknown>>,
    response: Schema.Schema<A, I>,
    options?: RetryOptions<A>
  ) => Effect.Effect<A, TrackerError>
  /** `PUT /api/2.0/mlflow-artifacts/artifacts/<path>` (the server's artifact proxy); a file body is streamed. */
  readonly upload: (artifactPath: string, body: RequestBody) => Effect.Effect<void, TrackerError | TrackerFileError>
}

const queryOf = (payload: Readonly<Record<string, unknown>>): string => {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(payload)) {
    if (value === undefined) continue
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, String(item))
  }
  const text = params.toString()
  return text.length === 0 ? "" : `?${text}`
}

export const makeRestClient = (config: RestConfig): RestClient => {
  const headers = (contentType?: string): Record<string, string> => ({
    ...(contentType === undefined ? {} : { "content-type": contentType }),
    ...(Option.isSome(config.authorization) ? { authorization: Redacted.value(config.authorization.value) } : {}),
    "user-agent": "sardine"
  })
  // The root's path prefix without its trailing "/" (a bare host has "/"), so "//api" never becomes a host.
  const prefix = config.baseUrl.pathname.replace(/\/+$/, "")
  const urlOf = (path: string) => new URL(`${config.baseUrl.origin}${prefix}${path}`)

  /** One attempt, its failures sorted into retryable and final ones. */
  const attempt = (
    operation: string,
    req: HttpRequest
  ): Effect.Effect<HttpResponse, Retryable | TrackerError | TrackerFileError> =>
    send(req).pipe(
      Effect.catchAll((failure): Effect.Effect<never, Retryable | TrackerFileError> =>
        failure._tag === "BodyFileFailure"
          ? Effect.fail(new TrackerFileError({ file: failure.file, reason: failure.reason }))
          : Effect.fail(new Retryable(new TrackerError({ operation, target: config.target, reason: failure.reason }), 0))
      ),
      Effect.flatMap((response): Effect.Effect<HttpResponse, Retryable | TrackerError> =>
        response.status >= 200 && response.status < 300
          ? Effect.succeed(response)
          : isRetryableStatus(response.status)
          ? Effect.fail(new Retryable(errorFrom(operation, config.target, response), retryAfterMs(response)))
          : Effect.fail(errorFrom(operation, config.target, response))
      )
    )

  /** Exponential backoff within the policy's budget; the last error says how long it kept trying. */
  const withRetry = <A, E>(
    operation: string,
    once: Effect.Effect<A, Retryable | E>,
    options: RetryOptions<A> = {}
  ): Effect.Effect<A, TrackerError | E> =>
    Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      let failures = 0
      while (true) {
        const result = yield* Effect.either(once)
        if (result._tag === "Right") return result.right
        const failure = result.left
        if (!(failure instanceof Retryable)) return yield* Effect.fail(failure as E)
        failures++
        const now = yield* Clock.currentTimeMillis
        const backoff = Math.min(config.retry.maxDelayMs, config.retry.initialDelayMs * 2 ** (failures - 1))
        const delay = Math.max(backoff, failure.retryAfterMs)
        if (now + delay - started > config.retry.budgetMs) {
          return yield* Effect.fail(
            new TrackerError({
              operation,
              target: config.target,
              reason: failure.error.reason,
              tried: `${failures} attempt${failures === 1 ? "" : "s"} in ${Math.round((now - started) / 1000)} s`,
              retryable: true,
              ...(failure.error.status === undefined ? {} : { status: failure.error.status }),
              ...(failure.error.error_code === undefined ? {} : { error_code: failure.error.error_code })
            })
          )
        }
        yield* Effect.sleep(Duration.millis(delay))
        if (options.beforeRetry !== undefined) {
          const found = yield* options.beforeRetry
          if (Option.isSome(found)) return found.value
        }
      }
    })

  const call: RestClient["call"] = (endpoint, method, payload, response, options) => {
    const url = urlOf(`/api/2.0/mlflow/${endpoint}${method === "GET" ? queryOf(payload) : ""}`)
    const body: RequestBody | undefined = method === "POST"
      ? { kind: "bytes", bytes: Buffer.from(JSON.stringify(payload)) }
      : undefined
    const once = attempt(endpoint, {
      method,
      url,
      headers: headers(method === "POST" ? "application/json" : undefined),
      ...(body === undefined ? {} : { body }),
      timeoutMs: config.timeoutMs
    }).pipe(
      Effect.flatMap((res) => {
        const text = res.body.toString("utf8")
        return Effect.try({
          try: () => Schema.decodeUnknownSync(response)(text.trim().length === 0 ? {} : JSON.parse(text)),
          catch: (error) =>
            new TrackerError({
              operation: endpoint,
              target: config.target,
              reason: `unexpected answer: ${error instanceof Error ? error.message.slice(0, 500) : String(error)}`
            })
        })
      }),
      // A file body never occurs on JSON calls.
      Effect.catchTag("TrackerFileError", (e) => Effect.die(e))
    )
    return withRetry(endpoint, once, options)
  }

  const upload: RestClient["upload"] = (artifactPath, body) => {
    const encoded = artifactPath.split("/").map(encodeURIComponent).join("/")
    return withRetry(
      "artifact upload",
      attempt("artifact upload", {
        method: "PUT",
        url: urlOf(`/api/2.0/mlflow-artifacts/artifacts/${encoded}`),
        headers: headers("application/octet-stream"),
        body,
        timeoutMs: Math.max(config.timeoutMs, 600_000)
      }).pipe(Effect.asVoid)
    )
  }

  return { target: config.target, config, call, upload }
}
