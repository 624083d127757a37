import { Effect, Layer } from "effect"
import { isAbsolute, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { TrackerFactory, TrackingInputError } from "../../framework/services/tracker.ts"
import { makeFileStoreTracker } from "./file-store-tracker.ts"
import { briefRetryPolicy, type Env, makeRestClient, redactUri, restConfig, type RetryPolicy } from "./rest-client.ts"
import { makeRestTracker, type RestTrackerOptions } from "./rest-tracker.ts"

export type TrackingTarget =
  | { readonly kind: "server"; readonly uri: string }
  | { readonly kind: "folder"; readonly path: string }

/**
 * What a tracking URI names, as MLflow reads it: http(s) → a server; file: URI or a plain path → a folder;
 * absent or empty → MLFLOW_TRACKING_URI, else ./mlruns under `cwd`.
 */
export const trackingTarget = (uri: string | undefined, env: Env, cwd: string): Effect.Effect<TrackingTarget, TrackingInputError> => {
  const chosen = uri !== undefined && uri !== "" ? uri : env.MLFLOW_TRACKING_URI ?? ""
  if (chosen === "") return Effect.succeed({ kind: "folder", path: resolve(cwd, "mlruns") })
  if (/^https?:\/\//i.test(chosen)) return Effect.succeed({ kind: "server", uri: chosen })
  if (/^file:/i.test(chosen)) {
    try {
      return Effect.succeed({ kind: "folder", path: fileURLToPath(chosen) })
    } catch {
      return Effect.fail(new TrackingInputError({ field: "tracking URI", value: chosen, rule: "a file: URI must name an absolute local path" }))
    }
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(chosen) && !/^[a-z]:[\\/]/i.test(chosen)) {
    return Effect.fail(
      new TrackingInputError({
        field: "tracking URI",
        value: redactUri(chosen),
        rule: "sardine writes to an MLflow server (http:// or https://) or an MLflow folder (a path or file: URI)"
      })
    )
  }
  return Effect.succeed({ kind: "folder", path: isAbsolute(chosen) ? chosen : resolve(cwd, chosen) })
}

export interface TrackerFactoryOptions extends RestTrackerOptions {
  readonly env?: Env
  readonly cwd?: string
  readonly retry?: RetryPolicy
  readonly timeoutMs?: number
}

/** How long a queued request may go without an answer. */
const queuedTimeoutMs = 20_000

/** The production TrackerFactory: REST tracker for servers, file-store tracker for folders. */
export const trackerFactoryLayer = (options: TrackerFactoryOptions = {}): Layer.Layer<TrackerFactory> =>
  Layer.succeed(TrackerFactory, {
    open: (uri, { queued = false } = {}) =>
      Effect.gen(function*() {
        const env = options.env ?? process.env
        const target = yield* trackingTarget(uri, env, options.cwd ?? process.cwd())
        if (target.kind === "folder") return yield* makeFileStoreTracker(target.path)
        const retry = queued ? briefRetryPolicy : options.retry
        // Queued, a hung server must not hold the queue (or the end of a run) for the default minute.
        const timeoutMs = queued ? Math.min(options.timeoutMs ?? queuedTimeoutMs, queuedTimeoutMs) : options.timeoutMs
        const config = yield* restConfig(target.uri, env, {
          ...(retry === undefined ? {} : { retry }),
          ...(timeoutMs === undefined ? {} : { timeoutMs })
        })
        return yield* makeRestTracker(makeRestClient(config), { ...options, ...(queued ? { bufferMetrics: false } : {}) })
      })
  })
