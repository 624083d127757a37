/**
 * The runner's file-working test steps (test/runner/file-steps.ts) with the tracking calls the engine's
 * steps make: `train` logs a `loss` point per iteration, `generate` writes real PNG samples (one per
 * prompt × seed × replicate) and logs each as an MLflow image. A run tracks into MLflow as a real one
 * does, in a second. Hooks the scenarios use (environment):
 *   TRACKED_STEPS_HOLD_AT=<n>   train waits to be killed once it has logged iteration n
 *   TRACKED_STEPS_GATE=<file>   generate writes <file>.waiting, then waits for <file> before logging its images
 */
import { Effect, Layer } from "effect"
import { existsSync } from "node:fs"
import { rename, writeFile } from "node:fs/promises"
import { join } from "node:path"
import sharp from "sharp"
import { promptsOf } from "../../framework/declaration/generation.ts"
import type { StepContext, StepHandlers } from "../../framework/runner/step-handler.ts"
import { StepImplementations } from "../../framework/runner/step-implementations.ts"
import { fileSteps } from "../runner/file-steps.ts"

const holdAt = Number(process.env.TRACKED_STEPS_HOLD_AT ?? "-1")
const gate = process.env.TRACKED_STEPS_GATE

/** Logs `loss` = 1 / iteration for every iteration the file steps' train makes (a resumed one starts after its checkpoint). */
const train = (ctx: StepContext<"train">) => {
  const progress = (done: number, total: number, unit: string) =>
    Effect.gen(function*() {
      yield* ctx.progress(done, total, unit)
      yield* ctx.tracking.metrics(done, { loss: 1 / done })
      if (done === holdAt) {
        yield* ctx.log(`holding at iteration ${done}`)
        yield* Effect.never
      }
    })
  return fileSteps.train({ ...ctx, progress })
}

const generate = (ctx: StepContext<"generate">) =>
  Effect.gen(function*() {
    yield* fileSteps.generate(ctx)
    const { generate } = ctx.step.config
    const files: Array<{ key: string; file: string }> = []
    for (const [p, prompt] of promptsOf(generate).entries()) {
      for (const seed of generate.seeds) {
        for (let r = 0; r < generate.samplesPerPrompt; r++) {
          const file = join(ctx.workDir, `sample-${p}-${seed}-${r}.png`)
          const pixels = Buffer.from(Array.from({ length: 16 * 16 }, (_, i) => (i * (p + 3) + seed * 17 + r * 29) % 256))
          const png = yield* Effect.promise(() => sharp(pixels, { raw: { width: 16, height: 16, channels: 1 } }).png().toBuffer())
          yield* Effect.promise(async () => {
            await writeFile(`${file}.tmp`, png)
            await rename(`${file}.tmp`, file)
          })
          files.push({ key: `samples/${String(p).padStart(2, "0")}-${prompt.text.replace(/[^a-z0-9]+/gi, "-").toLowerCase()}`, file })
        }
      }
    }
    if (gate !== undefined) {
      yield* Effect.promise(() => writeFile(`${gate}.waiting`, ""))
      while (!existsSync(gate)) yield* Effect.sleep("20 millis")
    }
    for (const [n, { file, key }] of files.entries()) yield* ctx.tracking.image(key, n, file)
  })

export const trackedSteps: StepHandlers<never> = { ...fileSteps, train, generate }

export const trackedStepsLayer = Layer.succeed(StepImplementations, { handlers: trackedSteps, backend: () => Effect.succeed(undefined) })
