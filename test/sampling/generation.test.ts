import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { existsSync, readFileSync } from "node:fs"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Generation, type GenerationInput, type Sampler as SamplerName } from "../../framework/declaration/generation.ts"
import { type GeneratedSample, samplesIndexFile } from "../../framework/services/engine.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { ADDED_TOKEN_EMBEDDING } from "../../adapters/tfjs/clip-text-model.ts"
import { layersOf } from "../../adapters/tfjs/layers.ts"
import { disposePipeline, loadPipeline, type StableDiffusionPipeline } from "../../adapters/tfjs/pipeline-loader.ts"
import { disposeConditioning, promptConditioning, usesGuidance } from "../../adapters/tfjs/sampling/conditioning.ts"
import { type DiffusionModels, diffusionModelsOf } from "../../adapters/tfjs/sampling/diffusion-models.ts"
import { generateSamples, type GenerateSamplesRequest } from "../../adapters/tfjs/sampling/generate-samples.ts"
import { guidedDenoiser } from "../../adapters/tfjs/sampling/guidance.ts"
import { sampleLatents } from "../../adapters/tfjs/sampling/sample-image.ts"
import { makeSampler } from "../../adapters/tfjs/sampling/sampler.ts"
import { unet2dCondition } from "../../adapters/tfjs/unet2d-condition.ts"
import { expectClose, get, readReference, type ReferenceTensor } from "../models/reference.ts"

const FIXTURES = "test/fixtures/sampling"
const PIPELINES = "test/fixtures/pipelines"

interface PipelineCase {
  readonly name: string
  readonly pipeline: "sd1-tiny" | "sdxl-tiny"
  readonly sampler: SamplerName
  readonly steps: number
  readonly eta: number
  readonly guidance: number
  readonly prompt: string
  readonly negative_prompt?: string
  readonly scheduler_config?: Record<string, unknown>
  readonly token?: string
  readonly seed: number
  readonly replicate: number
  readonly resolution: number
  readonly original_size?: [number, number]
  readonly crops_coords_top_left?: [number, number]
  readonly target_size?: [number, number]
}
const goldens = JSON.parse(readFileSync(`${FIXTURES}/goldens.json`, "utf8")) as { readonly pipelineCases: ReadonlyArray<PipelineCase> }

const generation = (input: GenerationInput) => Schema.decodeUnknownSync(Generation)(input)
const run = <A, E>(effect: Effect.Effect<A, E, ImageIO>) => Effect.runPromise(Effect.provide(effect, ImageIOLive))
const noProgress = () => Effect.void
const readRaster = (file: string) => run(Effect.flatMap(ImageIO, (io) => io.read(file)))

/** The pipeline's models, with `token` added to every tokenizer and its reference embedding rows in the text encoders' layers. */
const modelsWith = async (pipeline: StableDiffusionPipeline, token?: string): Promise<DiffusionModels> => {
  if (token === undefined) return Effect.runPromise(diffusionModelsOf(pipeline))
  const reference = await readReference(`${PIPELINES}/${pipeline.family === "sdxl" ? "sdxl-tiny" : "sd1-tiny"}.reference.safetensors`)
  const rows: Array<tf.Tensor> = []
  const models = await Effect.runPromise(diffusionModelsOf(pipeline, (component, parameters) => {
    if (component === "unet" || component === "vae") return layersOf(parameters)
    const row = get(reference, `${component}.added_token_embedding`)
    const added = tf.tensor2d(row.data as Float32Array, [1, row.shape[1]!])
    rows.push(added)
    return layersOf(new Map([...parameters, [ADDED_TOKEN_EMBEDDING, added]]))
  }))
  return { ...models, textEncoders: models.textEncoders.map((e) => ({ ...e, tokenizer: e.tokenizer.addTokens([token]) })) }
}

describe.each(["cpu", "wasm"])("generation reproduces diffusers' pipelines on the %s backend", (backend) => {
  const pipelines = new Map<string, StableDiffusionPipeline>()
  let reference: Map<string, ReferenceTensor>
  let out: string

  beforeAll(async () => {
    await Effect.runPromise(selectBackend(backend))
    for (const name of ["sd1-tiny", "sdxl-tiny"]) pipelines.set(name, await Effect.runPromise(loadPipeline(`${PIPELINES}/${name}`)))
    reference = await readReference(`${FIXTURES}/goldens.safetensors`)
    out = await mkdtemp(join(tmpdir(), "sardine-generation-"))
  })
  afterAll(async () => {
    pipelines.forEach(disposePipeline)
    await rm(out, { recursive: true, force: true })
  })

  it.each(goldens.pipelineCases.map((c) => [c.name, c] as const))("%s", async (_, c) => {
    const models = await modelsWith(pipelines.get(c.pipeline)!, c.token)
    const generate = generation({
      prompts: [c.prompt],
      seeds: [c.seed],
      samplesPerPrompt: c.replicate + 1,
      sampler: c.sampler,
      ...(c.scheduler_config ? { schedulerConfig: c.scheduler_config } : {}),
      ...(c.negative_prompt !== undefined ? { negativePrompt: c.negative_prompt } : {}),
      steps: c.steps,
      guidanceScale: c.guidance,
      eta: c.eta,
      resolution: c.resolution
    })
    const sizeConditioning = c.original_size
      ? { originalSize: c.original_size, cropTopLeft: c.crops_coords_top_left!, targetSize: c.target_size! }
      : undefined
    const size = { originalSize: [c.resolution, c.resolution], cropTopLeft: [0, 0], targetSize: [c.resolution, c.resolution], ...sizeConditioning } as const

    // The final latents, from the building blocks generateSamples uses.
    const sampler = await Effect.runPromise(makeSampler(generate, models.scheduler.config, models.scheduler.file))
    const conditioning = promptConditioning(models, c.prompt.replace("{token}", c.token ?? ""), usesGuidance(c.guidance), size, c.negative_prompt)
    const latentSide = c.resolution / (c.pipeline === "sdxl-tiny" ? 4 : 2)
    const latents = sampleLatents({
      models,
      sampler,
      conditioning,
      guidanceScale: c.guidance,
      size: [latentSide, latentSide],
      seed: c.seed,
      replicate: c.replicate
    })
    expectClose(latents, get(reference, `${c.name}.latents`), "final latents", "nhwc")
    tf.dispose(latents)
    disposeConditioning(conditioning)

    // The files: the TIFF is diffusers' postprocessed image averaged over its channels; the PNG its 8-bit rounding.
    const dir = join(out, c.name)
    const before = tf.memory().numTensors
    const samples = await run(
      generateSamples({
        models,
        generate,
        ...(c.token ? { token: c.token } : {}),
        resolution: 8,
        outDir: dir,
        progress: noProgress,
        ...(sizeConditioning ? { sizeConditioning } : {})
      })
    )
    expect(tf.memory().numTensors, "tensors left behind by generateSamples").toBe(before)
    const sample = samples[c.replicate]!
    expect(sample.prompt).toBe(c.token ? c.prompt.replace("{token}", c.token) : c.prompt)
    expect(sample.negativePrompt).toBe(c.negative_prompt)
    const tiff = await readRaster(join(dir, sample.tiff))
    expect([tiff.width, tiff.height, tiff.channels]).toEqual([c.resolution, c.resolution, 1])
    const image = tf.tensor2d(tiff.data, [c.resolution, c.resolution])
    expectClose(image, get(reference, `${c.name}.image`), "amplitude image")
    image.dispose()
    const png = await readRaster(join(dir, sample.png))
    expect(Array.from(png.data)).toEqual(Array.from(tiff.data, (v) => Math.round(v * 255)))
  })
})

describe("generation outputs and guidance (cpu)", () => {
  let sd1: StableDiffusionPipeline
  let sdxl: StableDiffusionPipeline
  let out: string

  beforeAll(async () => {
    await Effect.runPromise(selectBackend("cpu"))
    sd1 = await Effect.runPromise(loadPipeline(`${PIPELINES}/sd1-tiny`))
    sdxl = await Effect.runPromise(loadPipeline(`${PIPELINES}/sdxl-tiny`))
    out = await mkdtemp(join(tmpdir(), "sardine-generation-"))
  })
  afterAll(async () => {
    disposePipeline(sd1)
    disposePipeline(sdxl)
    await rm(out, { recursive: true, force: true })
  })

  it.each([["sd1-tiny"], ["sdxl-tiny"]])("%s: guidance 1 is the conditional prediction, guidance 0 the unconditional one", async (name) => {
    const models = await Effect.runPromise(diffusionModelsOf(name === "sd1-tiny" ? sd1 : sdxl))
    const size = { originalSize: [16, 16], cropTopLeft: [0, 0], targetSize: [16, 16] } as const
    const before = tf.memory().numTensors
    tf.tidy(() => {
      const latents = tf.randomNormal([1, 8, 8, 4], 0, 1, "float32", 5) as tf.Tensor4D
      const unet = (conditioning: ReturnType<typeof promptConditioning>) =>
        unet2dCondition(models.unet.plan, models.unet.layers, {
          sample: latents,
          timesteps: [500],
          encoderHiddenStates: conditioning.context,
          ...(conditioning.textTime ? { textTime: conditioning.textTime } : {})
        })
      const conditional = promptConditioning(models, "a harbour", false, size)
      const unconditional = promptConditioning(models, "", false, size)
      const guided = promptConditioning(models, "a harbour", true, size)
      expect(usesGuidance(1)).toBe(false)
      const c = unet(conditional)
      // Diffusers' SDXL negative is zeros (force_zeros_for_empty_prompt), SD's the encoding of "".
      const u = name === "sdxl-tiny"
        ? unet2dCondition(models.unet.plan, models.unet.layers, {
          sample: latents,
          timesteps: [500],
          encoderHiddenStates: tf.zerosLike(conditional.context),
          textTime: { textEmbeds: tf.zerosLike(conditional.textTime!.textEmbeds), timeIds: conditional.textTime!.timeIds }
        })
        : unet(unconditional)
      const read = (t: tf.Tensor4D): ReferenceTensor => ({
        shape: [t.shape[0], t.shape[3], t.shape[1], t.shape[2]],
        data: tf.transpose(t, [0, 3, 1, 2]).dataSync() as Float32Array
      })
      // Exactly the conditional prediction when unguided; through the guided batch at scales 1 and 0, to rounding.
      expect(Array.from(guidedDenoiser(models.unet, conditional, 1)(latents, 500).dataSync())).toEqual(Array.from(c.dataSync()))
      expectClose(guidedDenoiser(models.unet, guided, 1)(latents, 500), read(c), "guided, scale 1", "nhwc")
      expectClose(guidedDenoiser(models.unet, guided, 0)(latents, 500), read(u), "guided, scale 0", "nhwc")
      expect(models.forceZerosForEmptyPrompt).toBe(name === "sdxl-tiny")
    })
    expect(tf.memory().numTensors).toBe(before)
  })

  const request = (outDir: string, models: DiffusionModels): GenerateSamplesRequest => ({
    models,
    generate: generation({
      prompts: ["a harbour with ships", { text: "{token} over a glacier", split: "unseen" }],
      seeds: [7, 8],
      samplesPerPrompt: 2,
      sampler: "ddpm",
      steps: 2,
      guidanceScale: 3
    }),
    token: "<SAR>",
    resolution: 16,
    outDir,
    progress: noProgress
  })

  it("writes a TIFF and a PNG per prompt, seed and replicate, then samples.json; the same seed gives the same files", async () => {
    const models = await modelsWith(sd1, "<SAR>")
    const progress: Array<string> = []
    const first = join(out, "first")
    const samples = await run(generateSamples({
      ...request(first, models),
      progress: (done, total, unit) => Effect.sync(() => progress.push(`${done}/${total} ${unit}`))
    }))
    expect(progress).toEqual(Array.from({ length: 8 }, (_, i) => `${i + 1}/8 images`))
    const index = JSON.parse(await readFile(join(first, samplesIndexFile), "utf8")) as Array<GeneratedSample>
    expect(index).toEqual(samples)
    expect(index.map((s) => [s.promptIndex, s.seed, s.tiff, s.png])).toEqual([
      [0, 7, "images/p000-s7-r0.tif", "images/p000-s7-r0.png"],
      [0, 7, "images/p000-s7-r1.tif", "images/p000-s7-r1.png"],
      [0, 8, "images/p000-s8-r0.tif", "images/p000-s8-r0.png"],
      [0, 8, "images/p000-s8-r1.tif", "images/p000-s8-r1.png"],
      [1, 7, "images/p001-s7-r0.tif", "images/p001-s7-r0.png"],
      [1, 7, "images/p001-s7-r1.tif", "images/p001-s7-r1.png"],
      [1, 8, "images/p001-s8-r0.tif", "images/p001-s8-r0.png"],
      [1, 8, "images/p001-s8-r1.tif", "images/p001-s8-r1.png"]
    ])
    expect(index[4]).toMatchObject({ prompt: "<SAR> over a glacier", declaredPrompt: "{token} over a glacier", split: "unseen" })
    expect(index[0]).toMatchObject({ prompt: "a harbour with ships", declaredPrompt: "a harbour with ships", split: "seen" })

    const second = join(out, "second")
    await run(generateSamples(request(second, models)))
    const bytes = (dir: string, file: string) => readFile(join(dir, file))
    for (const s of index) {
      expect((await bytes(first, s.tiff)).equals(await bytes(second, s.tiff)), s.tiff).toBe(true)
      expect((await bytes(first, s.png)).equals(await bytes(second, s.png)), s.png).toBe(true)
    }
    // Another replicate or seed is another sample.
    const values = async (file: string) => Array.from((await readRaster(join(first, file))).data)
    expect(await values(index[0]!.tiff)).not.toEqual(await values(index[1]!.tiff))
    expect(await values(index[0]!.tiff)).not.toEqual(await values(index[2]!.tiff))
  })

  it("refuses {token} without a token and a resolution the VAE cannot decode, before writing anything", async () => {
    const models = await Effect.runPromise(diffusionModelsOf(sdxl))
    const dir = join(out, "refused")
    const { token: _, ...withoutToken } = request(dir, models)
    const missing = await run(Effect.flip(generateSamples(withoutToken)))
    expect(missing.message).toBe("generate.prompts[1]: uses {token} but no learned token was given")
    const negative = await run(
      Effect.flip(
        generateSamples(
          { ...withoutToken, generate: generation({ prompts: ["x"], negativePrompt: "not {token}" }) }
        )
      )
    )
    expect(negative.message).toBe("generate.negativePrompt: uses {token} but no learned token was given")
    const odd = await run(Effect.flip(generateSamples({ ...request(dir, models), generate: generation({ prompts: ["x"], resolution: 18 }) })))
    expect(odd.message).toBe("generate.resolution: 18 pixels is not a multiple of the VAE's scale factor 4")
    const steps = await run(Effect.flip(generateSamples({ ...request(dir, models), generate: generation({ prompts: ["x"], steps: 1001 }) })))
    expect(steps.message).toMatch(/scheduler_config\.json: 1001 inference steps/)
    expect(existsSync(dir)).toBe(false)
  })
})
