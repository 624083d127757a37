import { Effect, Layer, Schema } from "effect"
import { execFileSync } from "node:child_process"
import { cp, mkdir, readFile, rm } from "node:fs/promises"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { engineLayer } from "../../adapters/tfjs/engine-live.ts"
import { CONTROLNET_FOLDER } from "../../adapters/tfjs/training/trained-controlnet.ts"
import { MODEL_WEIGHTS } from "../../adapters/tfjs/training/trained-model-files.ts"
import type { StepRecord } from "../../adapters/tfjs/training/training-checkpoint.ts"
import { resolveAdaptation, resolveControlNet } from "../../framework/declaration/adaptation.ts"
import { BaseModel, diffusers, type ModelFamily } from "../../framework/declaration/base-model.ts"
import { type ComponentsInput } from "../../framework/declaration/components.ts"
import { Conditioning, controlNet } from "../../framework/declaration/conditioning.ts"
import { synthetic } from "../../framework/declaration/dataset.ts"
import { Generation, type GenerationInput } from "../../framework/declaration/generation.ts"
import type { TreatmentInput } from "../../framework/declaration/treatment.ts"
import { Engine, type GenerateRequest, type TrainRequest } from "../../framework/services/engine.ts"
import { prepareConditioned } from "../controlnet/conditioned-data.ts"
import { referencePython } from "../support/reference-python.ts"
import { repoRoot } from "../support/run-process.ts"
import { components, readWeights, temporaryFolder, training } from "../training/training-run.ts"
import { generatedImages, runTorch } from "./torch-worker.ts"

/**
 * The torch engine's ControlNet against the tfjs engine's, on tiny SD and SDXL pipelines (16 px synthetic
 * scenes, their label maps one-hot): both engines start from one ControlNet folder (the tfjs engine's
 * `from_unet` trained two steps, so that no zero convolution is zero) and train three steps on the same
 * draws: loss curves within 1e-3 relative and the ControlNets' updates within 2 %, the bounds of
 * test/torch/equivalence.test.ts. Each engine's trained model, read by the other, samples every scene with
 * its conditioning image alike from the same noise (1e-3 per pixel), with guidance, a conditioning scale
 * and guess mode; the samples record their scene. `export --format controlnet` of the torch-trained model
 * loads in diffusers' ControlNet pipeline, which gives the torch engine's image.
 * SDXL: sdxl-tiny with the UNet of test/fixtures/controlnet/sdxl-unet (a ControlNet copies one
 * layers_per_block; sdxl-tiny's UNet has several). Cost: 435 s measured on the shared 2 cores at load 5–15
 * (six trainings of 2–3 steps, eight generate runs, two exports, one diffusers run; each a Python or wasm start).
 */

const SIDE = 16
const dataset = synthetic({ n: 2, size: SIDE, seed: 11 })
const TRAIN = { steps: 3, batchSize: 2, seed: 5, checkpointEvery: 3, captionDropout: 0.3 }
const quiet = { progress: () => Effect.void, log: () => Effect.void, metrics: () => Effect.void }

const tfjsLayer = engineLayer({ backend: "wasm" }).pipe(Layer.provide(ImageIOLive))
const onTfjs = <A, E>(effect: Effect.Effect<A, E, Engine>) => Effect.runPromise(Effect.provide(effect, tfjsLayer))
const onTorch = runTorch
const ENGINES = { tfjs: onTfjs, torch: onTorch }

const norm = (values: Float32Array) => Math.sqrt(values.reduce((s, v) => s + v * v, 0))
const relative = (a: Float32Array, b: Float32Array) => {
  const d = Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0))
  return norm(b) === 0 ? norm(a) : d / norm(b)
}
const history = async (dir: string) => (JSON.parse(await readFile(join(dir, "training.json"), "utf8")) as { steps: Array<StepRecord> }).steps
const controlNetWeights = (modelDir: string) => readWeights(join(modelDir, CONTROLNET_FOLDER, "diffusion_pytorch_model.safetensors"))

interface Family {
  readonly name: string
  readonly family: ModelFamily
  /** The pipeline folder (made in beforeAll for SDXL). */
  pipeline: string
  readonly components: ComponentsInput
  readonly controlnet: TreatmentInput
}

const FAMILIES: ReadonlyArray<Family> = [
  {
    name: "SD",
    family: "sd15",
    pipeline: resolve(repoRoot, "test/fixtures/pipelines/sd1-tiny"),
    components: { unet: { _tag: "lora", rank: 2, lr: 1e-2 } },
    controlnet: { _tag: "full", lr: 1e-3 }
  },
  {
    name: "SDXL",
    family: "sdxl",
    pipeline: "",
    components: { unet: { _tag: "frozen" } },
    controlnet: { _tag: "lora", rank: 2, lr: 1e-2 }
  }
]

const adaptationOf = (f: Family, treatment: TreatmentInput, init: string) =>
  resolveAdaptation(
    components(f.components),
    f.family,
    resolveControlNet(Schema.decodeUnknownSync(Conditioning)(controlNet({ input: "label-map", from: "conditioning_file_name", treatment, init })), dataset)
  )

describe("the torch engine's ControlNet against the tfjs engine's", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  let dataDir: string
  const baseOf = (f: Family) => ({ base: Schema.decodeUnknownSync(BaseModel)(diffusers(f.pipeline, { family: f.family })), path: f.pipeline })
  const dirOf = (f: Family, what: string) => join(folder.dir, `${f.name}-${what}`)
  const trainRequest = (f: Family, workDir: string, adaptation: TrainRequest["adaptation"], steps: number, controlNetFolder?: string): TrainRequest => ({
    base: baseOf(f),
    adaptation,
    train: training({ ...TRAIN, steps }),
    dataDir,
    workDir,
    ...(controlNetFolder === undefined ? {} : { controlNetFolder }),
    ...quiet
  })

  beforeAll(async () => {
    folder = await temporaryFolder("torch-controlnet")
    dataDir = join(folder.dir, "data")
    await Effect.runPromise(prepareConditioned(dataDir, dataset))
    const sdxl = join(folder.dir, "sdxl-pipeline")
    await cp(resolve(repoRoot, "test/fixtures/pipelines/sdxl-tiny"), sdxl, { recursive: true })
    await rm(join(sdxl, "unet"), { recursive: true })
    await cp(resolve(repoRoot, "test/fixtures/controlnet/sdxl-unet"), join(sdxl, "unet"), { recursive: true })
    ;(FAMILIES[1] as Family).pipeline = sdxl
    for (const f of FAMILIES) {
      // The common start: the tfjs engine's from_unet, trained two steps (a full ControlNet) so that its zero convolutions moved.
      const start = dirOf(f, "start")
      await onTfjs(Effect.flatMap(Engine, (e) => e.train(trainRequest(f, start, adaptationOf(f, { _tag: "full", lr: 1e-2 }, "unet"), 2))))
      const adaptation = adaptationOf(f, f.controlnet, join(start, CONTROLNET_FOLDER))
      for (const engine of ["tfjs", "torch"] as const) {
        await ENGINES[engine](
          Effect.flatMap(Engine, (e) => e.train(trainRequest(f, dirOf(f, engine), adaptation, TRAIN.steps, join(start, CONTROLNET_FOLDER))))
        )
      }
    }
  }, 900_000)
  afterAll(() => folder.remove())

  it.each(FAMILIES.map((f, i) => [f.name, i] as const))(
    "%s: three steps train alike (loss curves within 1e-3, the ControlNet's updates within 2 %)",
    async (_, i) => {
      const f = FAMILIES[i]!
      const [a, b] = [await history(dirOf(f, "tfjs")), await history(dirOf(f, "torch"))]
      expect(b.map((r) => r.step)).toEqual([1, 2, 3])
      const losses = Math.max(...a.map((r, i) => Math.abs(b[i]!.loss - r.loss) / r.loss))
      expect(losses).toBeLessThan(1e-3)
      const [start, tfjs, torch] = await Promise.all([
        controlNetWeights(dirOf(f, "start")),
        controlNetWeights(dirOf(f, "tfjs")),
        controlNetWeights(dirOf(f, "torch"))
      ])
      expect([...torch.keys()].sort()).toEqual([...tfjs.keys()].sort())
      const update = (w: Float32Array, name: string) => w.map((v, i) => v - start.get(name)!.data[i]!)
      const names = [...tfjs.keys()]
      const moved = names.filter((name) => norm(update(tfjs.get(name)!.data, name)) > 0)
      // What the tfjs engine left in place the torch engine left in place too (up to float noise that AdamW scales up).
      const largest = Math.max(...moved.map((name) => norm(update(tfjs.get(name)!.data, name))))
      for (const name of names.filter((n) => !moved.includes(n))) expect(norm(update(torch.get(name)!.data, name)), name).toBeLessThan(1e-3 * largest)
      const errors = moved.map((name) => ({ name, error: relative(update(torch.get(name)!.data, name), update(tfjs.get(name)!.data, name)) }))
      const worst = errors.reduce((a, b) => (b.error > a.error ? b : a))
      console.log(
        `${f.name} ControlNet, 3 steps: worst loss difference ${losses.toExponential(1)}, worst update difference ${
          worst.error.toExponential(1)
        } (${worst.name}) over ${moved.length} moved tensors`
      )
      expect(moved.length).toBeGreaterThan(10)
      expect(worst.error, worst.name).toBeLessThan(0.02)
      // The rest of the trained model (the SD UNet's LoRA) is in the same names on both engines.
      const [tfjsModel, torchModel] = [await readWeights(join(dirOf(f, "tfjs"), MODEL_WEIGHTS)), await readWeights(join(dirOf(f, "torch"), MODEL_WEIGHTS))]
      expect([...torchModel.keys()].sort()).toEqual([...tfjsModel.keys()].sort())
    },
    600_000
  )

  const generation = (settings: Partial<GenerationInput>) =>
    Schema.decodeUnknownSync(Generation)({ conditions: dataset, seeds: [2], steps: 4, guidanceScale: 3, sampler: "euler", ...settings })
  const generate = (
    f: Family,
    modelDir: string,
    outDir: string,
    control: { scale: number; guessMode: boolean },
    settings: Partial<GenerationInput>
  ): GenerateRequest => {
    const adaptation = adaptationOf(f, f.controlnet, "unet")
    return {
      base: baseOf(f),
      adaptation: { ...adaptation, controlnet: { ...adaptation.controlnet!, ...control } },
      generate: generation(settings),
      modelDir,
      conditionsDir: dataDir,
      resolution: SIDE,
      outDir,
      progress: () => Effect.void
    }
  }
  const images = generatedImages

  const CASES = [
    ["the tfjs-trained model, scale 0.8", "tfjs", { scale: 0.8, guessMode: false }, {}],
    ["the torch-trained model, guess mode, DDPM (noise at every step)", "torch", { scale: 1.2, guessMode: true }, { sampler: "ddpm" }]
  ] as const
  it.each(FAMILIES.flatMap((f, i) => CASES.map((_, c) => [`${f.name}: ${CASES[c]![0]}`, i, c] as const)))(
    "generate alike from the same noise: %s, to 1e-3, each sample recording its scene",
    async (name, i, c) => {
      const [f, [, trainedBy, control, settings]] = [FAMILIES[i]!, CASES[c]!]
      const slug = name.replace(/\W+/g, "-")
      const outs = { tfjs: join(folder.dir, `gen-tfjs-${slug}`), torch: join(folder.dir, `gen-torch-${slug}`) }
      for (const engine of ["tfjs", "torch"] as const) {
        await ENGINES[engine](Effect.flatMap(Engine, (e) => e.generate(generate(f, dirOf(f, trainedBy), outs[engine], control, settings))))
      }
      const [a, b] = [await images(outs.tfjs), await images(outs.torch)]
      expect(b.map((s) => s.sample)).toEqual(a.map((s) => s.sample))
      expect(b.map((s) => s.sample.condition?.scene)).toEqual([0, 1])
      const worst = Math.max(...a.map((s, i) => s.data.reduce((m, v, j) => Math.max(m, Math.abs(v - b[i]!.data[j]!)), 0)))
      console.log(`${name}: worst pixel difference ${worst.toExponential(1)}`)
      expect(worst).toBeLessThan(1e-3)
    },
    600_000
  )

  it(
    "exports of the torch-trained SD model (--format diffusers with controlnet/ beside, --format controlnet) load in diffusers' ControlNet pipeline, which gives the torch engine's image",
    async () => {
      const f = FAMILIES[0]!
      const out = join(folder.dir, "exported-controlnet")
      const merged = join(folder.dir, "exported-pipeline")
      await onTorch(Effect.flatMap(Engine, (e) => e.export({ base: baseOf(f), modelDir: dirOf(f, "torch"), format: "controlnet", out, useEma: false })))
      const summary = await onTorch(
        Effect.flatMap(Engine, (e) => e.export({ base: baseOf(f), modelDir: dirOf(f, "torch"), format: "diffusers", out: merged, useEma: false }))
      )
      expect(summary.notes.join("\n")).toContain(join(merged, CONTROLNET_FOLDER))
      const weightsFile = "diffusion_pytorch_model.safetensors"
      expect(Buffer.compare(await readFile(join(merged, CONTROLNET_FOLDER, weightsFile)), await readFile(join(out, weightsFile)))).toBe(0)
      const samples = join(folder.dir, "export-samples")
      await onTorch(Effect.flatMap(Engine, (e) => e.generate(generate(f, dirOf(f, "torch"), samples, { scale: 0.8, guessMode: false }, {}))))
      const [first] = await images(samples)
      const prepared = JSON.parse(await readFile(join(dataDir, "index.json"), "utf8")) as {
        samples: Array<{ condition: string }>
        conditioning: { channels: number }
      }
      const diffusersOut = join(folder.dir, "diffusers")
      await mkdir(diffusersOut)
      execFileSync(referencePython(), [join(repoRoot, "tools/run_controlnet_pipeline.py")], {
        input: JSON.stringify({
          // The merged pipeline (the UNet's LoRA in it) with the ControlNet of --format controlnet, byte-identical to its controlnet/.
          pipeline: merged,
          controlnet: out,
          sdxl: false,
          out: diffusersOut,
          cases: [{
            prompt: first!.sample.prompt,
            image: join(dataDir, prepared.samples[0]!.condition),
            imageShape: [SIDE, SIDE, prepared.conditioning.channels],
            sampler: "euler",
            steps: 4,
            guidance: 3,
            scale: 0.8,
            guessMode: false,
            seed: 2,
            replicate: 0,
            resolution: SIDE
          }]
        }),
        stdio: ["pipe", "inherit", "inherit"]
      })
      const reference = new Float32Array((await readFile(join(diffusersOut, "0.f32"))).buffer.slice(0))
      const worst = reference.reduce((m, v, j) => Math.max(m, Math.abs(v - first!.data[j]!)), 0)
      console.log(
        `diffusers' StableDiffusionControlNetPipeline on the exported ControlNet vs the torch engine: worst pixel difference ${worst.toExponential(1)}`
      )
      expect(worst).toBeLessThan(1e-4)
    },
    600_000
  )
})
