import { Deferred, Effect } from "effect"
import { join } from "node:path"
import { expect } from "vitest"
import { readWeights } from "../training/training-run.ts"

/**
 * What the multi-process training tests (data-parallel, FSDP) share: a training stopped once a step is
 * reported, and the largest weight difference between two trained model folders.
 */

/** Runs `training` (given its progress callback) until it reports step `at`, then stops it (SIGTERM through the engine's interruption). */
export const trainUntilStep = <E, R>(at: number, training: (onStep: (done: number) => Effect.Effect<void>) => Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    const reached = yield* Deferred.make<void>()
    const run = training((done) => (done === at ? Deferred.succeed(reached, undefined) : Effect.void))
    return yield* Effect.raceFirst(Effect.as(run, "finished" as const), Effect.as(Deferred.await(reached), "stopped" as const))
  })

/** The largest |difference| of any weight between two trained model folders' model.safetensors (same names and sizes). */
export const largestWeightDifference = async (a: string, b: string) => {
  const [x, y] = [await readWeights(join(a, "model.safetensors")), await readWeights(join(b, "model.safetensors"))]
  expect([...y.keys()]).toEqual([...x.keys()])
  let largest = 0
  for (const [name, t] of x) {
    const other = y.get(name)!.data
    expect(other.length).toBe(t.data.length)
    for (let i = 0; i < t.data.length; i++) largest = Math.max(largest, Math.abs(t.data[i]! - other[i]!))
  }
  return largest
}
