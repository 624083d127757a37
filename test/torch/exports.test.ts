import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import { readFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { resolveAdaptation } from "../../framework/declaration/adaptation.ts"
import { BaseModel, diffusers } from "../../framework/declaration/base-model.ts"
import { Generation } from "../../framework/declaration/generation.ts"
import { Engine, type ExportFormat, type GeneratedSample } from "../../framework/services/engine.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { OnnxManifest, onnxManifestFile } from "../../framework/services/onnx-pipeline.ts"
import { makeOnnxEngine } from "../../adapters/onnx/onnx-engine.ts"
import { repoRoot } from "../support/run-process.ts"
import { prepareSyntheticData } from "../training/prepared-data.ts"
import { components, readWeights, temporaryFolder, training } from "../training/training-run.ts"
import { runPython, runTorch } from "./torch-worker.ts"

/**
 * A torch-trained model's exports load in the tools people use and give the engine's own samples: diffusers'
 * DiffusionPipeline.from_pretrained of the merged folder, and the base with load_lora_weights (kohya and PEFT
 * files) plus load_textual_inversion, each sampling with sardine's noise, agree with the torch engine's
 * generate step to 1e-3. (The tfjs engine's generate reading a torch-trained model: equivalence.test.ts.)
 * The ONNX export of the same model samples on onnxruntime-node what the torch engine samples.
 * Cost: ≈ 1 min (two training steps, four exports, one Python consumer run), ≈ 40 s more for the ONNX export and its samples.
 */

const base = resolve(repoRoot, "experiments/demo/base")
const resolvedBase = { base: Schema.decodeUnknownSync(BaseModel)(diffusers(base, { family: "tiny" })), path: base }
const MODEL = components({
  unet: { _tag: "lora", rank: 4, alpha: 8, lr: 5e-3 },
  textEncoders: { _tag: "lora", rank: 2, lr: 5e-3 },
  token: { token: "<SAR>", init: "radar", lr: 5e-2 }
})
const GENERATE = { prompts: ["{token} image of a harbour with a ship"], seeds: [0, 3], steps: 4, guidanceScale: 3, sampler: "euler" as const }

/** Two torch training steps of `model` on `on` over four synthetic 32² scenes, in `dir`; the trained model's folder. */
const trainTwoSteps = async (dir: string, on: typeof resolvedBase, model: typeof MODEL) => {
  const dataDir = join(dir, "data")
  const modelDir = join(dir, "model")
  await Effect.runPromise(prepareSyntheticData(dataDir, { n: 4, size: 32, seed: 8 }))
  await runTorch(Effect.flatMap(Engine, (engine) =>
    engine.train({
      base: on,
      adaptation: resolveAdaptation(model, on.base.family),
      train: training({ steps: 2, batchSize: 2, seed: 2 }),
      dataDir,
      workDir: modelDir,
      progress: () => Effect.void,
      metrics: () => Effect.void,
      log: () => Effect.void
    })))
  return modelDir
}

/**
 * The ONNX export of a torch-trained model (`exportOnnx` merges it) sampled on onnxruntime-node, against the
 * torch engine's own generate step on the model: the worst |difference| of the first sample.
 */
const onnxAgainstTorch = async (
  on: typeof resolvedBase,
  model: typeof MODEL,
  modelDir: string,
  dir: string,
  generate: typeof Generation.Type
) => {
  const onnxDir = join(dir, "onnx")
  const summary = await runTorch(Effect.flatMap(Engine, (engine) => engine.exportOnnx!({ base: on, modelDir, out: onnxDir, useEma: true })))
  expect(summary).toMatchObject({ opset: 17, trained: { step: 2 } })
  const torchDir = join(dir, "onnx-reference")
  await runTorch(Effect.flatMap(Engine, (engine) =>
    engine.generate({
      base: on,
      adaptation: resolveAdaptation(model, on.base.family),
      generate,
      modelDir,
      resolution: 32,
      outDir: torchDir,
      progress: () => Effect.void
    })))
  const [reference] = JSON.parse(await readFile(join(torchDir, "samples.json"), "utf8")) as Array<GeneratedSample>
  // The prompt with the token spelled out, as the torch engine wrote it: the export's tokenizers hold every spelling.
  const manifest = Schema.decodeUnknownSync(OnnxManifest)(JSON.parse(await readFile(join(onnxDir, onnxManifestFile), "utf8")))
  const onnxOut = join(dir, "onnx-samples")
  const read = (file: string) => Effect.flatMap(ImageIO, (io) => io.read(file))
  const [theirs, ours] = await Effect.runPromise(
    Effect.gen(function*() {
      const onnx = yield* makeOnnxEngine
      yield* onnx.generate({
        model: onnxDir,
        manifest,
        generate: { ...generate, prompts: [reference!.prompt] },
        resolution: 32,
        outDir: onnxOut,
        progress: () => Effect.void
      })
      return [yield* read(join(torchDir, reference!.tiff)), yield* read(join(onnxOut, reference!.tiff))] as const
    }).pipe(Effect.provide(Layer.merge(ImageIOLive, NodeContext.layer)))
  )
  return ours.data.reduce((m, v, i) => Math.max(m, Math.abs(v - theirs.data[i]!)), 0)
}

describe("a torch-trained model's exports in diffusers", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  let modelDir: string
  beforeAll(async () => {
    folder = await temporaryFolder("torch-exports")
    modelDir = await trainTwoSteps(folder.dir, resolvedBase, MODEL)
  }, 600_000)
  afterAll(() => folder.remove())

  it("load in diffusers (merged folder; kohya and PEFT LoRA with the embedding) and sample what the torch engine samples", async () => {
    const exported = (format: ExportFormat) => join(folder.dir, format === "diffusers" ? "merged" : `${format}.safetensors`)
    for (const format of ["diffusers", "kohya", "peft", "embedding"] as const) {
      await runTorch(Effect.flatMap(Engine, (engine) => engine.export({ base: resolvedBase, modelDir, format, out: exported(format), useEma: true })))
    }
    const samplesDir = join(folder.dir, "samples")
    await runTorch(Effect.flatMap(Engine, (engine) =>
      engine.generate({
        base: resolvedBase,
        adaptation: resolveAdaptation(MODEL, resolvedBase.base.family),
        generate: Schema.decodeUnknownSync(Generation)(GENERATE),
        modelDir,
        resolution: 32,
        outDir: samplesDir,
        progress: () => Effect.void
      })))
    const samples = JSON.parse(await readFile(join(samplesDir, "samples.json"), "utf8")) as Array<GeneratedSample>
    const request = {
      base,
      merged: exported("diffusers"),
      kohya: exported("kohya"),
      peft: exported("peft"),
      embedding: exported("embedding"),
      token: "<SAR>",
      prompts: [samples[0]!.prompt],
      seeds: GENERATE.seeds,
      steps: GENERATE.steps,
      guidance: GENERATE.guidanceScale,
      side: 32
    }
    const out = join(folder.dir, "consumers.safetensors")
    const result = await runPython(join(import.meta.dirname, "load_exports.py"), [out], JSON.stringify(request))
    expect(result.code, result.stderr).toBe(0)
    const theirs = await readWeights(out)
    for (const sample of samples) {
      const ours = await Effect.runPromise(Effect.flatMap(ImageIO, (io) => io.read(join(samplesDir, sample.tiff))).pipe(Effect.provide(ImageIOLive)))
      for (const consumer of ["diffusers", "kohya", "peft"]) {
        const image = theirs.get(`${consumer}.p0.s${sample.seed}`)!.data
        const worst = image.reduce((m, v, i) => Math.max(m, Math.abs(v - ours.data[i]!)), 0)
        expect(worst, `${consumer}, seed ${sample.seed}`).toBeLessThan(1e-3)
      }
    }
  }, 900_000)

  it("--format onnx merges the trained model (LoRA, token) into graphs whose samples on onnxruntime-node are the torch engine's (1e-3)", async () => {
    const worst = await onnxAgainstTorch(resolvedBase, MODEL, modelDir, folder.dir, Schema.decodeUnknownSync(Generation)({ ...GENERATE, seeds: [3] }))
    expect(worst).toBeLessThan(1e-3)
  }, 600_000)
})

const sdxl = resolve(repoRoot, "test/fixtures/pipelines/sdxl-tiny")
const sdxlBase = { base: Schema.decodeUnknownSync(BaseModel)(diffusers(sdxl, { family: "sdxl" })), path: sdxl }
const SDXL_MODEL = components({
  unet: { _tag: "lora", rank: 4, alpha: 8, lr: 5e-3 },
  textEncoders: { textEncoder: { _tag: "lora", rank: 2, lr: 5e-3 }, textEncoder2: { _tag: "lora", rank: 2, lr: 5e-3 } },
  token: { token: "<SAR>", init: "radar", lr: 5e-2 }
})

/** Cost: ≈ 1 min (two SDXL training steps on sdxl-tiny, the merged export's four graphs, two generations). */
describe("a torch-trained SDXL model's ONNX export", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  let modelDir: string
  beforeAll(async () => {
    folder = await temporaryFolder("torch-exports-sdxl")
    modelDir = await trainTwoSteps(folder.dir, sdxlBase, SDXL_MODEL)
  }, 600_000)
  afterAll(() => folder.remove())

  it(
    "merges LoRA on the UNet and both text encoders and the token in both tokenizers; its samples on onnxruntime-node are the torch engine's (1e-3)",
    async () => {
      const generate = Schema.decodeUnknownSync(Generation)({ ...GENERATE, seeds: [3], negativePrompt: "blurry" })
      const worst = await onnxAgainstTorch(sdxlBase, SDXL_MODEL, modelDir, folder.dir, generate)
      expect(worst).toBeLessThan(1e-3)
    },
    600_000
  )
})
