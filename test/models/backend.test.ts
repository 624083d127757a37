import * as tf from "@tensorflow/tfjs-core"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Logger, LogLevel } from "effect"
import { BackendError, selectBackend } from "../../adapters/tfjs/backend.ts"

/** Runs `effect` with a logger that collects the messages. */
const withLogs = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const messages: Array<string> = []
    const logger = Logger.make(({ message }) => messages.push((Array.isArray(message) ? message : [message]).join(" ")))
    const result = yield* Effect.either(
      effect.pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Logger.withMinimumLogLevel(LogLevel.Debug))
    )
    return { result, messages }
  })

describe("backend selection", () => {
  it.effect.each(["cpu", "wasm"])("SARDINE_BACKEND=%s activates that backend and says so", (name) =>
    Effect.gen(function*() {
      const { result, messages } = yield* withLogs(selectBackend(name))
      expect(result).toEqual(Either.right(name))
      expect(tf.getBackend()).toBe(name)
      expect(messages).toEqual([`tfjs backend: ${name} (from SARDINE_BACKEND)`])
    }))

  it.effect("an unknown SARDINE_BACKEND is an error naming the allowed values", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(selectBackend("webgpu"))
      expect(error).toBeInstanceOf(BackendError)
      expect(error.message).toBe("tfjs backend \"webgpu\": SARDINE_BACKEND must be one of tensorflow, wasm, cpu")
    }))

  it.effect("without a choice, takes the fastest backend that starts, logging what it skipped", () =>
    Effect.gen(function*() {
      // tfjs-node is an optional dependency: whether it is installed decides between the two outcomes.
      const native = yield* Effect.either(selectBackend("tensorflow"))
      const { result, messages } = yield* withLogs(selectBackend(""))
      if (Either.isRight(native)) {
        expect(result).toEqual(Either.right("tensorflow"))
        expect(messages).toEqual(["tfjs backend: tensorflow"])
      } else {
        expect(native.left.message).toContain("neither native binding loads")
        expect(result).toEqual(Either.right("wasm"))
        // Why the native backend did not load is debug detail; the choice is the info line.
        expect(messages).toHaveLength(2)
        expect(messages[0]).toMatch(/^tfjs backends unavailable: tfjs backend "tensorflow": neither native binding loads/)
        expect(messages[1]).toBe("tfjs backend: wasm (install @tensorflow/tfjs-node or -gpu for the native one)")
      }
      expect(tf.getBackend()).toBe(Either.isRight(native) ? "tensorflow" : "wasm")
    }))
})
