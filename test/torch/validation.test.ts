import { NodeContext } from "@effect/platform-node"
import { Effect, Schema } from "effect"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { resolveAdaptation } from "../../framework/declaration/adaptation.ts"
import { BaseModel, diffusers } from "../../framework/declaration/base-model.ts"
import { Engine } from "../../framework/services/engine.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { validationImagesIn } from "../../framework/steps/validation-images.ts"
import { repoRoot } from "../support/run-process.ts"
import { prepareSyntheticData } from "../training/prepared-data.ts"
import { components, temporaryFolder, training } from "../training/training-run.ts"
import { runTorch } from "./torch-worker.ts"

/**
 * train.validationPrompts on the torch engine: every `validationEvery` steps (and at the end) each prompt is
 * sampled with the weights of that step, kept as a PNG in the train step's output and handed to the step's
 * image sink (MLflow); the report lists them. Cost: ≈ 30 s (one training of 4 steps, 2 × 20 sampling steps).
 */

const base = resolve(repoRoot, "experiments/demo/base")

describe("validation images during a torch training", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  beforeAll(async () => {
    folder = await temporaryFolder("torch-validation")
  })
  afterAll(() => folder.remove())

  it("are sampled every validationEvery steps, kept in the output, logged, and listed by the report", async () => {
    const dataDir = join(folder.dir, "data")
    const workDir = join(folder.dir, "train")
    await Effect.runPromise(prepareSyntheticData(dataDir, { n: 4, size: 32, seed: 6 }))
    const logged: Array<{ key: string; step: number; file: string }> = []
    const prompts = ["{token} image of a harbour with a ship", "SAR image of a town"]
    await runTorch(Effect.flatMap(Engine, (engine) =>
      engine.train({
        base: { base: Schema.decodeUnknownSync(BaseModel)(diffusers(base, { family: "tiny" })), path: base },
        adaptation: resolveAdaptation(
          components({ unet: { _tag: "lora", rank: 2, lr: 1e-3 }, token: { token: "<SAR>", init: "radar", vectors: 2, lr: 1e-2 } }),
          "tiny"
        ),
        train: training({ steps: 5, batchSize: 2, seed: 1, validationPrompts: prompts, validationEvery: 2 }),
        dataDir,
        workDir,
        progress: () => Effect.void,
        metrics: () => Effect.void,
        log: () => Effect.void,
        image: (key, step, file) => Effect.sync(() => void logged.push({ key, step, file }))
      })))
    const steps = [2, 4, 5]
    expect(logged.map((l) => [l.step, l.key])).toEqual(steps.flatMap((step) => [
      [step, "validation/00-sar-sar-1-image-of-a-harbour-with-a-ship"],
      [step, "validation/01-sar-image-of-a-town"]
    ]))
    for (const { file, step } of logged) {
      expect(file).toContain(join(workDir, "validation", `step-${String(step).padStart(8, "0")}`))
      const raster = await Effect.runPromise(Effect.flatMap(ImageIO, (io) => io.read(file)).pipe(Effect.provide(ImageIOLive)))
      expect([raster.width, raster.height]).toEqual([32, 32])
    }
    const listed = await Effect.runPromise(validationImagesIn(workDir, prompts).pipe(Effect.provide(NodeContext.layer)))
    expect(listed.map((v) => [v.step, v.prompt])).toEqual(steps.flatMap((step) => prompts.map((p) => [step, p])))
    expect(listed.map((v) => v.file)).toEqual(logged.map((l) => l.file))
  }, 600_000)
})
