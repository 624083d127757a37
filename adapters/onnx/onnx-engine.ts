import * as tf from "@tensorflow/tfjs-core"
import { Effect, Layer } from "effect"
import { existsSync, readdirSync } from "node:fs"
import { readFile } from "node:fs/promises"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import * as ort from "onnxruntime-node"
import { negativePromptOf, promptsOf } from "../../framework/declaration/generation.ts"
import { EngineError, type GeneratedSample } from "../../framework/services/engine.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { OnnxEngine, type OnnxGenerateRequest, type OnnxManifest, type OnnxRuntimeInfo } from "../../framework/services/onnx-pipeline.ts"
import { sampleStem, writeSampleImages, writeSamplesIndex } from "../images/sample-files.ts"
import { selectBackend } from "../tfjs/backend.ts"
import { drawNoise, gaussianStream } from "../tfjs/sampling/gaussian-noise.ts"
import { makeScheduler } from "../tfjs/sampling/sampler.ts"
import type { DiffusionScheduler, NoiseDraw } from "../tfjs/schedulers/diffusion-scheduler.ts"
import type { ClipTokenizer } from "../tokenizer/clip-tokenizer.ts"
import { loadClipTokenizer } from "../tokenizer/tokenizer-files.ts"

/**
 * The ONNX engine: an ONNX export's graphs on onnxruntime-node, the denoising loop in TypeScript. The
 * scheduler arithmetic, the noise draws and the files are the tfjs engine's own code (makeScheduler on the
 * tfjs backend the tfjs engine would use, the (seed, replicate) Gaussian streams, sample-files.ts), so for the same noise its
 * samples are the tfjs engine's up to the graphs' float differences. Only the UNet, VAE decoder and text
 * encoder run on onnxruntime: CUDA's execution provider when its libraries are installed next to
 * onnxruntime-node's binding, else the CPU's.
 */

const failed = (reason: string) => new EngineError({ operation: "generate", reason })

/** The folder of onnxruntime-node's native binding, where its optional provider libraries are installed. */
const bindingFolders = (): Array<string> => {
  const root = join(dirname(createRequire(import.meta.url).resolve("onnxruntime-node")), "..", "bin")
  const found: Array<string> = []
  const walk = (folder: string) => {
    for (const entry of existsSync(folder) ? readdirSync(folder, { withFileTypes: true }) : []) {
      if (entry.isDirectory()) walk(join(folder, entry.name))
      else if (entry.name === "onnxruntime_binding.node") found.push(folder)
    }
  }
  walk(root)
  return found
}

/** CUDA when this build knows it and its provider library is installed (onnxruntime-node's install script downloads it on request). */
export const onnxRuntimeInfo = (): OnnxRuntimeInfo => {
  const known = ort.listSupportedBackends().map((b) => b.name)
  const cudaInstalled = bindingFolders().some((folder) => existsSync(join(folder, "libonnxruntime_providers_cuda.so")))
  const cuda = known.includes("cuda") && cudaInstalled
  return {
    version: ort.env.versions.node ?? ort.env.versions.common,
    providers: cuda ? ["cuda", "cpu"] : ["cpu"],
    unavailable: known.includes("cuda") && !cuda ? ["cuda"] : []
  }
}

interface Graphs {
  readonly unet: ort.InferenceSession
  readonly vaeDecoder: ort.InferenceSession
  readonly textEncoder: ort.InferenceSession
}

const openGraphs = (folder: string, manifest: OnnxManifest, providers: ReadonlyArray<string>) => {
  const open = (name: keyof OnnxManifest["graphs"]) => {
    const file = join(folder, manifest.graphs[name].file)
    return Effect.tryPromise({
      try: () => ort.InferenceSession.create(file, { executionProviders: [...providers] }),
      catch: (e) => failed(`${file}: cannot load the ONNX graph: ${(e as Error).message}`)
    })
  }
  return Effect.acquireRelease(
    Effect.all({ unet: open("unet"), vaeDecoder: open("vae_decoder"), textEncoder: open("text_encoder") }),
    (graphs: Graphs) => Effect.promise(() => Promise.all([graphs.unet.release(), graphs.vaeDecoder.release(), graphs.textEncoder.release()]))
  )
}

const run = (session: ort.InferenceSession, graph: string, feeds: Record<string, ort.Tensor>, output: string) =>
  Effect.tryPromise({
    try: async () => {
      const result = (await session.run(feeds))[output]
      if (result === undefined || result.type !== "float32") throw new Error(`no float32 output ${output}`)
      return result
    },
    catch: (e) => failed(`the ${graph} graph: ${(e as Error).message}`)
  })

/** An NHWC tfjs tensor as the NCHW float32 tensor the graphs take. */
const toNchw = (x: tf.Tensor4D): ort.Tensor => {
  const nchw = tf.transpose(x, [0, 3, 1, 2])
  const [b, c, h, w] = nchw.shape
  const data = nchw.dataSync() as Float32Array
  nchw.dispose()
  return new ort.Tensor("float32", data, [b, c, h, w])
}

const fromNchw = (x: ort.Tensor): tf.Tensor4D =>
  tf.tidy(() => tf.transpose(tf.tensor4d(x.data as Float32Array, x.dims as [number, number, number, number]), [0, 2, 3, 1]))

/** The text encoder's last hidden state for each text (StableDiffusionPipeline.encode_prompt, no clip skip): [texts, tokens, hidden]. */
const encodeTexts = (graphs: Graphs, manifest: OnnxManifest, tokenizer: ClipTokenizer, texts: ReadonlyArray<string>) => {
  const ids = BigInt64Array.from(tokenizer.encodeBatch(texts), BigInt)
  const { inputs, outputs } = manifest.graphs.text_encoder
  return run(graphs.textEncoder, "text_encoder", { [inputs[0]]: new ort.Tensor("int64", ids, [texts.length, tokenizer.maxLength]) }, outputs[0])
}

/**
 * The denoising loop of diffusers' pipelines (as samplerOf, awaiting the UNet): scale the input, predict
 * with classifier-free guidance u + s·(c − u) on the batch [unconditional, conditional], step.
 */
const sampleLatents = (
  graphs: Graphs,
  manifest: OnnxManifest,
  scheduler: DiffusionScheduler,
  context: ort.Tensor,
  guidanceScale: number,
  initialNoise: tf.Tensor4D,
  noise: NoiseDraw
) =>
  Effect.gen(function*() {
    const guided = context.dims[0] === 2
    const [sample, timestep, hidden] = manifest.graphs.unet.inputs
    let latents = tf.tidy(() => tf.mul(initialNoise, scheduler.initNoiseSigma)) as tf.Tensor4D
    const state = scheduler.start()
    // Released however the loop ends (a failed graph run included).
    yield* Effect.addFinalizer(() => Effect.sync(() => state.dispose()))
    for (const [i, t] of scheduler.timesteps.entries()) {
      const input = tf.tidy(() => {
        const scaled = scheduler.scaleModelInput(latents, i)
        return guided ? tf.concat([scaled, scaled]) : scaled
      })
      const feeds = { [sample]: toNchw(input), [timestep]: new ort.Tensor("float32", Float32Array.of(t), [1]), [hidden]: context }
      // DDIM and DDPM scale nothing: unguided, the input is the latents themselves.
      if (input !== latents) input.dispose()
      const output = yield* run(graphs.unet, "unet", feeds, manifest.graphs.unet.outputs[0]).pipe(
        Effect.tapError(() => Effect.sync(() => latents.dispose()))
      )
      const next = tf.tidy(() => {
        const prediction = fromNchw(output)
        const [unconditional, conditional] = guided ? tf.split(prediction, 2) as [tf.Tensor4D, tf.Tensor4D] : [prediction, prediction]
        const guidedPrediction = guided ? tf.add(unconditional, tf.mul(tf.sub(conditional, unconditional), guidanceScale)) : prediction
        return state.step(guidedPrediction as tf.Tensor4D, i, latents, noise)
      })
      latents.dispose()
      latents = next
    }
    return latents
  })

/** The normalised amplitude [H·W] in [0, 1]: decoded at latents / scaling_factor, [−1, 1] → [0, 1] clamped, averaged over channels. */
const decodeAmplitude = (graphs: Graphs, manifest: OnnxManifest, latents: tf.Tensor4D) =>
  Effect.gen(function*() {
    const scaled = tf.div(latents, manifest.scalingFactor) as tf.Tensor4D
    const { inputs, outputs } = manifest.graphs.vae_decoder
    const feeds = { [inputs[0]]: toNchw(scaled) }
    scaled.dispose()
    const image = yield* run(graphs.vaeDecoder, "vae_decoder", feeds, outputs[0])
    return tf.tidy(() => {
      const unit = tf.clipByValue(tf.add(tf.div(fromNchw(image), 2), 0.5), 0, 1)
      return tf.squeeze(tf.mean(unit, -1), [0]).dataSync() as Float32Array
    })
  })

/** The scheduler arithmetic runs on the tfjs backend in use, else on the one the tfjs engine would choose (selectBackend). */
const schedulerBackend = Effect.suspend(() =>
  tf.engine().backendName == null
    ? Effect.asVoid(selectBackend()).pipe(Effect.mapError((e) => failed(e.message)))
    : Effect.promise(() => tf.ready())
)

/** An ONNX export opened: its graphs' sessions (released with the scope), tokenizer and scheduler config. */
export interface OnnxPipeline {
  readonly manifest: OnnxManifest
  readonly graphs: Graphs
  readonly tokenizer: ClipTokenizer
  readonly schedulerConfig: unknown
  readonly schedulerFile: string
}

export const openOnnxPipeline = (folder: string, manifest: OnnxManifest, providers: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const schedulerFile = join(folder, manifest.scheduler)
    const schedulerConfig = yield* Effect.tryPromise({
      try: async () => JSON.parse(await readFile(schedulerFile, "utf8")) as unknown,
      catch: (e) => failed(`${schedulerFile}: ${(e as Error).message}`)
    })
    const tokenizer = yield* loadClipTokenizer(join(folder, manifest.tokenizer)).pipe(Effect.mapError((e) => failed(e.message)))
    const graphs = yield* openGraphs(folder, manifest, providers)
    const pipeline: OnnxPipeline = { manifest, graphs, tokenizer, schedulerConfig, schedulerFile }
    return pipeline
  })

/** Every prompt × seed × replicate of the generation, written as the generate step writes them. */
export const generateOnnxSamples = (pipeline: OnnxPipeline, request: Omit<OnnxGenerateRequest, "model" | "manifest">) =>
  Effect.gen(function*() {
    const { generate: g } = request
    const { graphs, manifest, tokenizer } = pipeline
    yield* schedulerBackend
    const side = g.resolution ?? request.resolution
    if (!Number.isInteger(side) || side % manifest.vaeScaleFactor !== 0) {
      return yield* failed(`generate.resolution: ${side} pixels is not a multiple of the VAE's scale factor ${manifest.vaeScaleFactor}`)
    }
    if (g.conditions !== undefined) return yield* failed("generate.conditions: an ONNX export carries no ControlNet")
    const latentSide = side / manifest.vaeScaleFactor
    // Built per sample: a scheduler run remembers a multistep solver's history.
    const scheduler = () => makeScheduler(g, pipeline.schedulerConfig, pipeline.schedulerFile).pipe(Effect.mapError((e) => failed(e.message)))
    yield* scheduler()
    const prompts = promptsOf(g)
    // An export's tokenizer holds a learned token as written (`<SAR>`); there is no `{token}` to fill in.
    const placeholder = prompts.flatMap((p) => [p.text, negativePromptOf(g, p) ?? ""]).find((text) => text.includes("{token}"))
    if (placeholder !== undefined) {
      return yield* failed(`"${placeholder}" uses {token}: an ONNX export has no learned token to put there; write the token itself`)
    }
    const guided = g.guidanceScale > 1
    const total = prompts.length * g.seeds.length * g.samplesPerPrompt
    const samples: Array<GeneratedSample> = []
    for (const [promptIndex, prompt] of prompts.entries()) {
      const negativePrompt = negativePromptOf(g, prompt)
      // diffusers' negative_prompt=None is the empty prompt's encoding.
      const context = yield* encodeTexts(graphs, manifest, tokenizer, guided ? [negativePrompt ?? "", prompt.text] : [prompt.text])
      for (const seed of g.seeds) {
        for (let replicate = 0; replicate < g.samplesPerPrompt; replicate++) {
          const stream = gaussianStream(seed, replicate)
          const initial = drawNoise(stream, [1, latentSide, latentSide, manifest.latentChannels])
          const latents = yield* Effect.scoped(
            sampleLatents(graphs, manifest, yield* scheduler(), context, g.guidanceScale, initial, (shape) => drawNoise(stream, shape))
          )
            .pipe(Effect.ensuring(Effect.sync(() => initial.dispose())))
          const amplitude = yield* decodeAmplitude(graphs, manifest, latents).pipe(Effect.ensuring(Effect.sync(() => latents.dispose())))
          const stem = sampleStem(promptIndex, seed, replicate)
          yield* writeSampleImages(request.outDir, stem, amplitude, side).pipe(Effect.mapError((e) => failed(e.message)))
          samples.push({
            prompt: prompt.text,
            declaredPrompt: prompt.text,
            ...(negativePrompt === undefined ? {} : { negativePrompt }),
            promptIndex,
            split: prompt.split,
            seed,
            tiff: `${stem}.tif`,
            png: `${stem}.png`
          })
          yield* request.progress(samples.length, total, "images")
        }
      }
    }
    yield* writeSamplesIndex(request.outDir, samples).pipe(Effect.mapError((e) => failed(e.message)))
  })

export const makeOnnxEngine = Effect.gen(function*() {
  const io = yield* ImageIO
  const runtime = yield* Effect.cached(Effect.sync(onnxRuntimeInfo))
  return {
    runtime,
    generate: (request) =>
      Effect.scoped(
        Effect.flatMap(runtime, (info) => openOnnxPipeline(request.model, request.manifest, info.providers)).pipe(
          Effect.flatMap((pipeline) => generateOnnxSamples(pipeline, request))
        )
      ).pipe(Effect.provideService(ImageIO, io))
  } satisfies OnnxEngine["Type"]
})

/** The ONNX engine as a layer (it needs ImageIO to write the samples). */
export const OnnxEngineLive = Layer.effect(OnnxEngine, makeOnnxEngine)
