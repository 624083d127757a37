import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { execFileSync } from "node:child_process"
import { mkdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { disposeParameters } from "../../adapters/tfjs/checkpoint.ts"
import { controlNet } from "../../adapters/tfjs/controlnet.ts"
import { layersOf } from "../../adapters/tfjs/layers.ts"
import { disposePipeline, loadControlNet, loadPipeline } from "../../adapters/tfjs/pipeline-loader.ts"
import { disposeConditioning, promptConditioning, usesGuidance } from "../../adapters/tfjs/sampling/conditioning.ts"
import { diffusionModelsOf } from "../../adapters/tfjs/sampling/diffusion-models.ts"
import { decodeAmplitude, sampleLatents } from "../../adapters/tfjs/sampling/sample-image.ts"
import { makeSampler } from "../../adapters/tfjs/sampling/sampler.ts"
import { loraLayers } from "../../adapters/tfjs/training/lora.ts"
import { CONTROLNET_FOLDER, initialControlNet } from "../../adapters/tfjs/training/trained-controlnet.ts"
import { MODEL_WEIGHTS, readModelManifest } from "../../adapters/tfjs/training/trained-model-files.ts"
import { trainModel } from "../../adapters/tfjs/training/trainer.ts"
import type { StepRecord } from "../../adapters/tfjs/training/training-checkpoint.ts"
import { resolveAdaptation, resolveControlNet } from "../../framework/declaration/adaptation.ts"
import { Components, type ComponentsInput } from "../../framework/declaration/components.ts"
import { Conditioning, controlNet as declaredControlNet, syntheticClasses } from "../../framework/declaration/conditioning.ts"
import { synthetic } from "../../framework/declaration/dataset.ts"
import type { TreatmentInput } from "../../framework/declaration/treatment.ts"
import { Training, type TrainingInput } from "../../framework/declaration/training.ts"
import { readPreparedCondition, readPreparedIndex } from "../../framework/steps/prepared-dataset.ts"
import { referencePython } from "../support/reference-python.ts"
import { prepareConditioned as prepareConditionedData } from "./conditioned-data.ts"
import { repoRoot } from "../support/run-process.ts"
import { prepareSyntheticData } from "../training/prepared-data.ts"
import { readWeights, temporaryFolder } from "../training/training-run.ts"

/**
 * Training a ControlNet with the real trainer on sd1-tiny (16 px synthetic scenes, their label maps one-hot):
 * next to a LoRA UNet and a learned token, resumed exactly after an interruption, written as a diffusers
 * ControlNet folder that diffusers' StableDiffusionControlNetPipeline samples as sardine does; a LoRA
 * ControlNet written merged. Cost: about 80 s measured on the shared 2 cores at load ≈ 19 (12 steps at 16 px on cpu, one diffusers run).
 */

const PIPELINE = "test/fixtures/pipelines/sd1-tiny"
const SIDE = 16
const dataset = synthetic({ n: 3, size: SIDE, seed: 3, captionTemplate: "{token} image of {caption}" })

const conditioning = (treatment: TreatmentInput) =>
  Schema.decodeUnknownSync(Conditioning)(declaredControlNet({ input: "label-map", from: "conditioning_file_name", treatment }))

const adaptationOf = (components: ComponentsInput, controlnet: TreatmentInput) =>
  resolveAdaptation(Schema.decodeUnknownSync(Components)(components), "sd15", resolveControlNet(conditioning(controlnet), dataset))

const prepareConditioned = (dir: string) => prepareConditionedData(dir, dataset, "<SAR>")

const HYBRID: ComponentsInput = {
  unet: { _tag: "lora", rank: 2, lr: 1e-2 },
  token: { token: "<SAR>", init: "radar", lr: 5e-2 }
}
const TRAIN: TrainingInput = { steps: 4, batchSize: 2, seed: 13, checkpointEvery: 2, captionDropout: 0.2 }

const trainIn = (
  workDir: string,
  dataDir: string,
  adaptation: ReturnType<typeof adaptationOf>,
  train: TrainingInput,
  metrics: (step: number) => Effect.Effect<void> = () => Effect.void
) =>
  trainModel({
    base: PIPELINE,
    adaptation,
    train: Schema.decodeUnknownSync(Training)(train),
    dataDir,
    workDir,
    progress: () => Effect.void,
    metrics: (step) => metrics(step),
    log: () => Effect.void
  })

const history = async (dir: string) => (JSON.parse(await readFile(join(dir, "training.json"), "utf8")) as { steps: Array<StepRecord> }).steps
const maxAbs = (data: Float32Array) => data.reduce((m, v) => Math.max(m, Math.abs(v)), 0)

describe("training a ControlNet next to the components' treatments", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  let dataDir: string
  const hybrid = adaptationOf(HYBRID, { _tag: "full", lr: 1e-2 })

  beforeAll(async () => {
    await Effect.runPromise(selectBackend("cpu"))
    folder = await temporaryFolder("controlnet-training")
    dataDir = join(folder.dir, "data")
    await Effect.runPromise(prepareConditioned(dataDir))
  })
  afterAll(() => folder.remove())

  it("trains LoRA UNet + full ControlNet + token on the label maps, resumes exactly, and writes the ControlNet", async () => {
    const whole = join(folder.dir, "whole")
    await Effect.runPromise(trainIn(whole, dataDir, hybrid, TRAIN))
    const manifest = await Effect.runPromise(readModelManifest(whole))
    expect(manifest.adaptation.controlnet).toEqual(hybrid.controlnet)
    const weights = await readWeights(join(whole, MODEL_WEIGHTS))
    // from_unet leaves the zero convolutions at zero: training moved them, and the UNet's adapters and the token trained beside.
    for (
      const name of [
        "controlnet.controlnet_mid_block.weight",
        "controlnet.controlnet_down_blocks.0.weight",
        "controlnet.controlnet_cond_embedding.conv_out.weight"
      ]
    ) {
      expect(maxAbs(weights.get(name)!.data), name).toBeGreaterThan(0)
    }
    expect([...weights.keys()].some((n) => n.startsWith("unet.") && n.endsWith(".lora_B.weight"))).toBe(true)
    expect(weights.has("text_encoder.text_model.embeddings.added_token_embedding.weight")).toBe(true)
    const written = await Effect.runPromise(loadControlNet(join(whole, CONTROLNET_FOLDER)))
    expect(written.plan.config.conditioning_channels).toBe(Object.keys(syntheticClasses).length)
    expect(written.parameters.get("controlnet_mid_block.weight")!.dataSync()).toEqual(weights.get("controlnet.controlnet_mid_block.weight")!.data)
    disposeParameters(written.parameters)

    // Ctrl-C during step 3: resuming from step 2's checkpoint gives the same curve and files, bit for bit.
    const resumed = join(folder.dir, "resumed")
    const interrupted = await Effect.runPromiseExit(trainIn(resumed, dataDir, hybrid, TRAIN, (step) => (step === 3 ? Effect.interrupt : Effect.void)))
    expect(interrupted._tag).toBe("Failure")
    await Effect.runPromise(trainIn(resumed, dataDir, hybrid, TRAIN))
    expect((await history(resumed)).map((r) => r.loss)).toEqual((await history(whole)).map((r) => r.loss))
    for (const file of [MODEL_WEIGHTS, join(CONTROLNET_FOLDER, "diffusion_pytorch_model.safetensors")]) {
      expect(Buffer.compare(await readFile(join(resumed, file)), await readFile(join(whole, file))), file).toBe(0)
    }
  })

  it("the trained ControlNet folder loads in diffusers: StableDiffusionControlNetPipeline gives sardine's image on a prepared label map", async () => {
    await Effect.runPromise(selectBackend("wasm"))
    const workDir = join(folder.dir, "whole")
    const pipeline = await Effect.runPromise(loadPipeline(PIPELINE))
    const controlnet = await Effect.runPromise(loadControlNet(join(workDir, CONTROLNET_FOLDER)))
    const models = await Effect.runPromise(diffusionModelsOf(pipeline))
    try {
      const prepared = await Effect.runPromise(readPreparedIndex(dataDir))
      const labels = await Effect.runPromise(readPreparedCondition(dataDir, prepared.samples[0]!))
      const channels = labels.length / (SIDE * SIDE)
      await writeFile(join(folder.dir, "labels.f32"), Buffer.from(labels.buffer, labels.byteOffset, labels.byteLength))
      const c = { prompt: "a sar image of a harbour", sampler: "euler" as const, steps: 3, guidance: 3, scale: 1, guessMode: false, seed: 4, replicate: 1 }
      const out = join(folder.dir, "diffusers")
      await mkdir(out)
      execFileSync(referencePython(), [join(repoRoot, "tools/run_controlnet_pipeline.py")], {
        input: JSON.stringify({
          pipeline: join(repoRoot, PIPELINE),
          controlnet: join(workDir, CONTROLNET_FOLDER),
          sdxl: false,
          out,
          cases: [{ ...c, image: join(folder.dir, "labels.f32"), imageShape: [SIDE, SIDE, channels], resolution: SIDE }]
        }),
        stdio: ["pipe", "inherit", "inherit"]
      })
      const diffusers = new Float32Array((await readFile(join(out, "0.f32"))).buffer.slice(0))
      const sampler = await Effect.runPromise(makeSampler({ sampler: c.sampler, steps: c.steps, eta: 0 }, pipeline.scheduler.config, "scheduler"))
      const prompt = promptConditioning(models, c.prompt, usesGuidance(c.guidance), {
        originalSize: [SIDE, SIDE],
        cropTopLeft: [0, 0],
        targetSize: [SIDE, SIDE]
      })
      const image = tf.tensor4d(labels, [1, SIDE, SIDE, channels])
      const control = { plan: controlnet.plan, layers: layersOf(controlnet.parameters), image, scale: c.scale, guessMode: c.guessMode }
      const sample = (withControl: boolean) =>
        tf.tidy(() => {
          const latents = sampleLatents({
            models,
            sampler,
            conditioning: prompt,
            guidanceScale: c.guidance,
            size: [SIDE / 2, SIDE / 2],
            seed: c.seed,
            replicate: c.replicate,
            ...(withControl ? { control } : {})
          })
          return decodeAmplitude(models.vae, latents).dataSync() as Float32Array
        })
      const ours = sample(true)
      const plain = sample(false)
      let worst = 0
      let moved = 0
      for (let p = 0; p < ours.length; p++) {
        worst = Math.max(worst, Math.abs(ours[p]! - diffusers[p]!))
        moved = Math.max(moved, Math.abs(plain[p]! - diffusers[p]!))
      }
      expect(worst, "largest difference from diffusers").toBeLessThan(1e-4)
      expect(moved, "the trained ControlNet changes the image").toBeGreaterThan(10 * worst)
      tf.dispose(image)
      disposeConditioning(prompt)
    } finally {
      disposeParameters(controlnet.parameters)
      disposePipeline(pipeline)
      await Effect.runPromise(selectBackend("cpu"))
    }
  })

  it("a LoRA ControlNet is written merged: the folder's ControlNet gives the adapters' residuals", async () => {
    const workDir = join(folder.dir, "lora")
    const adaptation = adaptationOf({ unet: { _tag: "frozen" } }, { _tag: "lora", rank: 2, lr: 5e-2 })
    await Effect.runPromise(trainIn(workDir, dataDir, adaptation, { steps: 2, batchSize: 1, seed: 5 }))
    const weights = await readWeights(join(workDir, MODEL_WEIGHTS))
    const pipeline = await Effect.runPromise(loadPipeline(PIPELINE))
    const prepared = await Effect.runPromise(readPreparedIndex(dataDir))
    // The ControlNet training started from (from_unet, seeded as the run), with the trained adapters on it.
    const base = await Effect.runPromise(
      initialControlNet(pipeline, adaptation.controlnet!, undefined, { dir: dataDir, conditioning: prepared.conditioning }, 5)
    )
    const merged = await Effect.runPromise(loadControlNet(join(workDir, CONTROLNET_FOLDER)))
    try {
      const adapters = new Map<string, { down: tf.Tensor; up: tf.Tensor }>()
      for (const [name, w] of weights) {
        if (!name.endsWith(".lora_A.weight")) continue
        const module = name.slice("controlnet.".length, -".lora_A.weight".length)
        const up = weights.get(`controlnet.${module}.lora_B.weight`)!
        adapters.set(module, { down: tf.tensor(w.data, w.shape.slice()), up: tf.tensor(up.data, up.shape.slice()) })
      }
      expect(adapters.size).toBeGreaterThan(0)
      const treatment = adaptation.controlnet!.treatment
      const scale = treatment._tag === "lora" ? treatment.scale : 1
      const labels = await Effect.runPromise(readPreparedCondition(dataDir, prepared.samples[1]!))
      const inputs = {
        sample: tf.randomNormal([1, SIDE / 2, SIDE / 2, 4], 0, 1, "float32", 7) as tf.Tensor4D,
        timesteps: [500],
        encoderHiddenStates: tf.randomNormal([1, 77, pipeline.unet.plan.config.cross_attention_dim as number], 0, 1, "float32", 8) as tf.Tensor3D,
        condition: tf.tensor4d(labels, [1, SIDE, SIDE, labels.length / (SIDE * SIDE)])
      }
      const viaAdapters = controlNet(base.plan, loraLayers(layersOf(base.parameters), adapters, scale), inputs)
      const viaFolder = controlNet(merged.plan, layersOf(merged.parameters), inputs)
      const residual = (r: typeof viaAdapters) => [...r.down, r.mid].map((t) => t.dataSync() as Float32Array)
      const [a, b] = [residual(viaAdapters), residual(viaFolder)]
      let worst = 0
      let size = 0
      a.forEach((x, k) =>
        x.forEach((v, i) => {
          worst = Math.max(worst, Math.abs(v - b[k]![i]!))
          size = Math.max(size, Math.abs(v))
        })
      )
      expect(size, "the adapters moved the zero convolutions").toBeGreaterThan(0)
      expect(worst).toBeLessThan(1e-5 * Math.max(1, size))
      tf.dispose([...adapters.values()].flatMap((w) => [w.down, w.up]))
      tf.dispose([...viaAdapters.down, viaAdapters.mid, ...viaFolder.down, viaFolder.mid, inputs.sample, inputs.encoderHiddenStates, inputs.condition])
    } finally {
      disposeParameters(base.parameters)
      disposeParameters(merged.parameters)
      disposePipeline(pipeline)
    }
  })

  it("a ControlNet on data prepared without conditioning images is refused, naming the data folder", async () => {
    const plain = join(folder.dir, "plain")
    await Effect.runPromise(prepareSyntheticData(plain, { n: 1, size: SIDE, seed: 1 }))
    const refused = await Effect.runPromise(Effect.flip(trainIn(join(folder.dir, "refused"), plain, hybrid, { steps: 1, batchSize: 1, seed: 1 })))
    expect(refused._tag).toBe("DataFolderError")
    expect(refused.message).toContain(join(plain, "index.json"))
    expect(refused.message).toContain("holds no conditioning images")
  })
})
