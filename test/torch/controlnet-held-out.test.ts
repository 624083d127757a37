import { Effect, Layer, Schema } from "effect"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { engineLayer } from "../../adapters/tfjs/engine-live.ts"
import { resolveAdaptation, resolveControlNet } from "../../framework/declaration/adaptation.ts"
import { BaseModel, diffusers } from "../../framework/declaration/base-model.ts"
import { Conditioning, controlNet } from "../../framework/declaration/conditioning.ts"
import { synthetic } from "../../framework/declaration/dataset.ts"
import { trainingMetrics } from "../../framework/metrics/metric-catalog.ts"
import { Engine, type TrainRequest } from "../../framework/services/engine.ts"
import { prepareConditioned } from "../controlnet/conditioned-data.ts"
import { repoRoot } from "../support/run-process.ts"
import { components, temporaryFolder, training } from "../training/training-run.ts"
import { runTorch } from "./torch-worker.ts"

/**
 * A ControlNet experiment with a held-out dataset of its own (train.validationLoss.data): the held-out data is
 * prepared with its conditioning images, as the plan prepares it, and both engines measure the held-out loss
 * through the ControlNet alike. The UNet is frozen and the ControlNet starts from the UNet (zero convolutions
 * zero), so the held-out loss moves after step 0 only through the ControlNet. Bound: 1e-3 relative, the loss
 * curves' bound of test/torch/equivalence.test.ts. Tiny SD pipeline, 16 px synthetic scenes, two steps per engine.
 * Cost: about 65 s measured on the shared 2 cores at load ≈ 10 (two trainings of two steps, one Python start).
 */

const SIDE = 16
const trainData = synthetic({ n: 2, size: SIDE, seed: 11 })
const heldOut = synthetic({ n: 2, size: SIDE, seed: 22 })
const pipeline = resolve(repoRoot, "test/fixtures/pipelines/sd1-tiny")
const base = { base: Schema.decodeUnknownSync(BaseModel)(diffusers(pipeline, { family: "sd15" })), path: pipeline }
const adaptation = resolveAdaptation(
  components({ unet: { _tag: "frozen" } }),
  "sd15",
  resolveControlNet(
    Schema.decodeUnknownSync(Conditioning)(controlNet({ input: "label-map", from: "conditioning_file_name", treatment: { _tag: "full", lr: 1e-2 } })),
    trainData
  )
)
const STEPS = [0, 1, 2]

const tfjsLayer = engineLayer({ backend: "wasm" }).pipe(Layer.provide(ImageIOLive))
const ENGINES = {
  tfjs: <A, E>(effect: Effect.Effect<A, E, Engine>) => Effect.runPromise(Effect.provide(effect, tfjsLayer)),
  torch: runTorch
}

describe("a ControlNet's held-out validation loss on a dataset of its own", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  const measured = { tfjs: new Map<number, number>(), torch: new Map<number, number>() }

  beforeAll(async () => {
    folder = await temporaryFolder("controlnet-held-out")
    const dataDir = join(folder.dir, "data")
    const heldDir = join(folder.dir, "held-out")
    await Effect.runPromise(prepareConditioned(dataDir, trainData))
    await Effect.runPromise(prepareConditioned(heldDir, heldOut))
    for (const engine of ["tfjs", "torch"] as const) {
      const request: TrainRequest = {
        base,
        adaptation,
        train: training({ steps: 2, batchSize: 2, seed: 5, checkpointEvery: 2, validationLoss: { data: heldOut, every: 1, timesteps: 2 } }),
        dataDir,
        validation: { dataDir: heldDir },
        workDir: join(folder.dir, engine),
        progress: () => Effect.void,
        log: () => Effect.void,
        metrics: (step, values) =>
          Effect.sync(() => {
            const value = values[trainingMetrics.validationLoss]
            if (value !== undefined) measured[engine].set(step, value)
          })
      }
      await ENGINES[engine](Effect.flatMap(Engine, (e) => e.train(request)))
    }
  }, 300_000)
  afterAll(() => folder.remove())

  it("both engines log the same held-out losses from step 0 (1e-3 relative), which the trained ControlNet moves", () => {
    expect([...measured.tfjs.keys()]).toEqual(STEPS)
    expect([...measured.torch.keys()]).toEqual(STEPS)
    console.log(`ControlNet, held-out dataset, validation loss at steps 0, 1, 2: tfjs ${[...measured.tfjs.values()]}, torch ${[...measured.torch.values()]}`)
    const worst = Math.max(...STEPS.map((step) => Math.abs(measured.torch.get(step)! - measured.tfjs.get(step)!) / measured.tfjs.get(step)!))
    expect(worst).toBeLessThan(1e-3)
    // Only the ControlNet trains: a held-out loss that left it out would stay at its step-0 value.
    for (const losses of [measured.tfjs, measured.torch]) expect(losses.get(2)).not.toBe(losses.get(0))
  })
})
