import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"

/** tfjs backends sardine runs on, fastest first. */
export const BACKENDS = ["tensorflow", "wasm", "cpu"] as const
export type BackendName = (typeof BACKENDS)[number]

export class BackendError extends Schema.TaggedError<BackendError>()("BackendError", {
  backend: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `tfjs backend "${this.backend}": ${this.reason}`
  }
}

// The native bindings are optional dependencies (their install downloads libtensorflow); a specifier in a
// variable keeps TypeScript from requiring them to be installed.
const NATIVE_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]

const registrations: Record<BackendName, () => Promise<void>> = {
  tensorflow: async () => {
    const failures: Array<string> = []
    for (const name of NATIVE_PACKAGES) {
      try {
        await import(name)
        return
      } catch (error) {
        failures.push(`${name}: ${(error as Error).message.split("\n")[0]}`)
      }
    }
    throw new Error(`neither native binding loads (${failures.join("; ")})`)
  },
  wasm: async () => {
    await import("@tensorflow/tfjs-backend-wasm")
  },
  cpu: async () => {
    await import("@tensorflow/tfjs-backend-cpu")
  }
}

const activate = (name: BackendName): Effect.Effect<void, BackendError> =>
  Effect.tryPromise({
    try: async () => {
      await registrations[name]()
      if (!(await tf.setBackend(name))) throw new Error("it registered but failed to initialise")
      await tf.ready()
    },
    catch: (error) => new BackendError({ backend: name, reason: error instanceof Error ? error.message : String(error) })
  })

/**
 * Activates the fastest tfjs backend that works here (`tensorflow` › `wasm` › `cpu`), or the one the
 * `SARDINE_BACKEND` variable names (then a failure is an error, not a fallback). Logs which one runs.
 */
export const selectBackend = (requested: string | undefined = process.env.SARDINE_BACKEND): Effect.Effect<BackendName, BackendError> =>
  Effect.gen(function*() {
    if (requested !== undefined && requested !== "") {
      if (!(BACKENDS as ReadonlyArray<string>).includes(requested)) {
        return yield* new BackendError({ backend: requested, reason: `SARDINE_BACKEND must be one of ${BACKENDS.join(", ")}` })
      }
      const name = requested as BackendName
      yield* activate(name)
      yield* Effect.logInfo(`tfjs backend: ${name} (from SARDINE_BACKEND)`)
      return name
    }
    const skipped: Array<string> = []
    for (const name of BACKENDS) {
      const result = yield* Effect.either(activate(name))
      if (result._tag === "Right") {
        // Why the faster backends did not load is detail; the choice itself is worth a line.
        if (skipped.length > 0) yield* Effect.logDebug(`tfjs backends unavailable: ${skipped.join("; ")}`)
        yield* Effect.logInfo(`tfjs backend: ${name}${name === "tensorflow" ? "" : " (install @tensorflow/tfjs-node or -gpu for the native one)"}`)
        return name
      }
      skipped.push(result.left.message)
    }
    return yield* new BackendError({ backend: "any", reason: skipped.join("; ") })
  })
