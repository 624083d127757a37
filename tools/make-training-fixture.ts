/**
 * The sardine side of the training interop goldens: a small model trained by sardine and its exports.
 *
 * Writes, under test/fixtures/training/:
 *   lora-token-model/   a train step's output (model.json, model.safetensors): LoRA rank 2 on the tiny SDXL-like
 *                       UNet's attention and feed-forward, LoRA on both text encoders, a learned 2-vector `<SAR>`;
 *                       trained 4 steps on the cpu backend with a large learning rate, so the adapters move far
 *                       from zero and their effect on the outputs is large
 *   exported/kohya.safetensors, exported/peft.safetensors, exported/embedding.safetensors
 *                       that model exported by sardine in the three file formats
 * tools/make_training_goldens.py then loads the exports with diffusers and writes the reference outputs.
 *
 * Run from the repository root: npx tsx tools/make-training-fixture.ts
 */
import { Effect, Schema } from "effect"
import { copyFile, mkdir, mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { selectBackend } from "../adapters/tfjs/backend.ts"
import { exportModel } from "../adapters/tfjs/export/export-model.ts"
import { MODEL_MANIFEST, MODEL_WEIGHTS } from "../adapters/tfjs/training/trained-model-files.ts"
import { trainModel } from "../adapters/tfjs/training/trainer.ts"
import { resolveAdaptation } from "../framework/declaration/adaptation.ts"
import { Components } from "../framework/declaration/components.ts"
import { Training } from "../framework/declaration/training.ts"
import { prepareSyntheticData } from "../test/training/prepared-data.ts"

const BASE = "test/fixtures/pipelines/sdxl-tiny"
const OUT = "test/fixtures/training"

export const FIXTURE_ADAPTATION = resolveAdaptation(
  Schema.decodeUnknownSync(Components)({
    unet: { _tag: "lora", rank: 2, alpha: 4, lr: 0.2, targets: ["to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2"] },
    textEncoders: { _tag: "lora", rank: 2, lr: 0.2 },
    token: { token: "<SAR>", init: "radar", vectors: 2, lr: 0.5 }
  }),
  "sdxl"
)

const main = Effect.gen(function*() {
  yield* selectBackend("cpu")
  const work = yield* Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-training-fixture-")))
  const modelDir = join(OUT, "lora-token-model")
  const exported = join(OUT, "exported")
  yield* Effect.promise(async () => {
    await rm(modelDir, { recursive: true, force: true })
    await rm(exported, { recursive: true, force: true })
    await mkdir(modelDir, { recursive: true })
    await mkdir(exported, { recursive: true })
  })
  yield* prepareSyntheticData(join(work, "data"), { n: 4, size: 32, seed: 6 })
  yield* trainModel({
    base: BASE,
    adaptation: FIXTURE_ADAPTATION,
    train: Schema.decodeUnknownSync(Training)({ steps: 4, batchSize: 2, seed: 17, captionDropout: 0, checkpointEvery: 100 }),
    dataDir: join(work, "data"),
    workDir: join(work, "train"),
    progress: () => Effect.void,
    metrics: (step, values) => Effect.log(`step ${step}: loss ${values.loss}`),
    log: Effect.log
  })
  // Only the model itself is the fixture (not the checkpoint or the metrics).
  yield* Effect.promise(async () => {
    for (const file of [MODEL_MANIFEST, MODEL_WEIGHTS]) await copyFile(join(work, "train", file), join(modelDir, file))
  })
  for (const format of ["kohya", "peft", "embedding"] as const) {
    yield* exportModel({ base: BASE, modelDir, format, out: join(exported, `${format}.safetensors`), useEma: true })
  }
  yield* Effect.promise(() => rm(work, { recursive: true, force: true }))
  yield* Effect.log(`wrote ${modelDir} and ${exported}`)
})

Effect.runPromise(main).catch((error) => {
  console.error(error)
  process.exit(1)
})
