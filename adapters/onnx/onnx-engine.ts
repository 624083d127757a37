import { FileSystem } from "@effect/platform"
import * as tf from "@tensorflow/tfjs-core"
import { Effect, Layer, Schema } from "effect"
import { createRequire } from "node:module"
import { basename, dirname, join } from "node:path"
import * as ort from "onnxruntime-node"
import { negativePromptOf, promptsOf } from "../../framework/declaration/generation.ts"
import { EngineError, type GeneratedSample } from "../../framework/services/engine.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { OnnxEngine, type OnnxGenerateRequest, type OnnxManifest, type OnnxRuntimeInfo, type SdxlOnnxManifest } from "../../framework/services/onnx-pipeline.ts"
import { sampleStem, writeSampleImages, writeSamplesIndex } from "../images/sample-files.ts"
import { selectBackend } from "../tfjs/backend.ts"
import { type ImageSizeConditioning, sdxlTimeIds } from "../tfjs/prompt-encoding.ts"
import { drawNoise, gaussianStream } from "../tfjs/sampling/gaussian-noise.ts"
import { makeScheduler } from "../tfjs/sampling/sampler.ts"
import type { DiffusionScheduler, NoiseDraw } from "../tfjs/schedulers/diffusion-scheduler.ts"
import type { ClipTokenizer } from "../tokenizer/clip-tokenizer.ts"
import { loadClipTokenizer } from "../tokenizer/tokenizer-files.ts"
import { isNotFound } from "../../framework/files/file-errors.ts"

/**
 * The ONNX engine: an ONNX export's graphs on onnxruntime-node, the denoising loop in TypeScript. The
 * scheduler arithmetic, the noise draws and the files are the tfjs engine's own code (makeScheduler on the
 * tfjs backend the tfjs engine would use, the (seed, replicate) Gaussian streams, sample-files.ts), so for the same noise its
 * samples are the tfjs engine's up to the graphs' float differences; an SDXL export's prompts are conditioned
 * as the tfjs engine conditions them (conditioning.ts: the encoders' penultimate hidden states concatenated,
 * the pooled text_embeds, its size / crop time ids, zeros for no negative prompt where the pipeline forces
 * them). Only the UNet, VAE decoder and text encoders run on onnxruntime: CUDA's execution provider when its
 * libraries are installed next to onnxruntime-node's binding, else the CPU's.
 */

const failed = (reason: string) => new EngineError({ operation: "generate", reason })

/** A file or folder the engine could not read, named. */
const unreadable = (path: string, e: { readonly message: string }) => failed(`${path}: ${e.message}`)

/**
 * CUDA when this build knows it and its provider library is installed next to a native binding of
 * onnxruntime-node (its install script downloads it on request).
 */
export const onnxRuntimeInfo: Effect.Effect<OnnxRuntimeInfo, EngineError, FileSystem.FileSystem> = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const known = ort.listSupportedBackends().map((b) => b.name)
  const root = join(dirname(createRequire(import.meta.url).resolve("onnxruntime-node")), "..", "bin")
  const files = yield* fs.readDirectory(root, { recursive: true }).pipe(
    Effect.catchIf(isNotFound, () => Effect.succeed([])),
    Effect.mapError((e) => unreadable(root, e))
  )
  const bindings = new Set(files.filter((f) => basename(f) === "onnxruntime_binding.node").map(dirname))
  const cudaInstalled = files.some((f) => basename(f) === "libonnxruntime_providers_cuda.so" && bindings.has(dirname(f)))
  const cuda = known.includes("cuda") && cudaInstalled
  const info: OnnxRuntimeInfo = {
    version: ort.env.versions.node ?? ort.env.versions.common,
    providers: cuda ? ["cuda", "cpu"] : ["cpu"],
    unavailable: known.includes("cuda") && !cuda ? ["cuda"] : []
  }
  return info
})

/** The text encoders' graph names, in pipeline order. */
const encoderGraphs = (manifest: OnnxManifest) => manifest.family === "sdxl" ? ["text_encoder", "text_encoder_2"] as const : ["text_encoder"] as const

interface Graphs {
  readonly unet: ort.InferenceSession
  readonly vaeDecoder: ort.InferenceSession
  /** In pipeline order (encoderGraphs). */
  readonly textEncoders: ReadonlyArray<ort.InferenceSession>
}

const release = (session: ort.InferenceSession, file: string) =>
  Effect.tryPromise({ try: () => session.release(), catch: (e) => unreadable(file, e as Error) }).pipe(
    Effect.catchAll((e) => Effect.logWarning(`cannot release the ONNX session of ${e.reason}`))
  )

const openGraphs = (folder: string, manifest: OnnxManifest, providers: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const graphs: Record<string, { readonly file: string }> = manifest.graphs
    // Each session is released with the scope, however many opened before one failed.
    const open = (name: string) => {
      const file = join(folder, graphs[name]!.file)
      return Effect.acquireRelease(
        Effect.tryPromise({
          try: () => ort.InferenceSession.create(file, { executionProviders: [...providers] }),
          catch: (e) => failed(`${file}: cannot load the ONNX graph: ${(e as Error).message}`)
        }),
        (session) => release(session, file)
      )
    }
    const result: Graphs = {
      unet: yield* open("unet"),
      vaeDecoder: yield* open("vae_decoder"),
      textEncoders: yield* Effect.forEach(encoderGraphs(manifest), open)
    }
    return result
  })

const run = (session: ort.InferenceSession, graph: string, feeds: Record<string, ort.Tensor>, outputs: ReadonlyArray<string>) =>
  Effect.tryPromise({
    try: async () => {
      const result = await session.run(feeds, [...outputs])
      return outputs.map((output) => {
        const tensor = result[output]
        if (tensor === undefined || tensor.type !== "float32") throw new Error(`no float32 output ${output}`)
        return tensor
      })
    },
    catch: (e) => failed(`the ${graph} graph: ${(e as Error).message}`)
  })

const runOne = (session: ort.InferenceSession, graph: string, feeds: Record<string, ort.Tensor>, output: string) =>
  Effect.map(run(session, graph, feeds, [output]), ([tensor]) => tensor!)

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

const tokenIds = (tokenizer: ClipTokenizer, texts: ReadonlyArray<string>) =>
  new ort.Tensor("int64", BigInt64Array.from(tokenizer.encodeBatch(texts), BigInt), [texts.length, tokenizer.maxLength])

const fromOrt3d = (x: ort.Tensor) => tf.tensor3d(x.data as Float32Array, x.dims as [number, number, number])

const toOrt = (x: tf.Tensor): ort.Tensor => new ort.Tensor("float32", x.dataSync() as Float32Array, x.shape)

/** The UNet's conditioning for one prompt, the unconditional row first when guided (as conditioning.ts). */
interface OnnxConditioning {
  /** encoder_hidden_states: [1 or 2, tokens, cross_attention_dim]. */
  readonly context: ort.Tensor
  /** SDXL's added conditions: text_embeds [rows, projection_dim] and time_ids [rows, 6]. */
  readonly added?: { readonly textEmbeds: ort.Tensor; readonly timeIds: ort.Tensor }
}

/** SD 1.x / 2.x, as StableDiffusionPipeline.encode_prompt (no clip skip): the last hidden state of each text. */
const encodeSd = (pipeline: OnnxPipeline, texts: ReadonlyArray<string>) => {
  const { graphs, manifest, tokenizers } = pipeline
  const { inputs, outputs } = manifest.graphs.text_encoder
  return runOne(graphs.textEncoders[0]!, "text_encoder", { [inputs[0]]: tokenIds(tokenizers[0]!, texts) }, outputs[0])
}

/**
 * SDXL, as StableDiffusionXLPipeline.encode_prompt (the same text for both encoders, no clip skip): each
 * encoder's penultimate hidden state, concatenated, and the second encoder's text_embeds.
 */
const encodeSdxl = (pipeline: OnnxPipeline, manifest: typeof SdxlOnnxManifest.Type, texts: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const { graphs, tokenizers } = pipeline
    const first = manifest.graphs.text_encoder
    const second = manifest.graphs.text_encoder_2
    const [hidden1] = yield* run(graphs.textEncoders[0]!, "text_encoder", { [first.inputs[0]]: tokenIds(tokenizers[0]!, texts) }, [first.outputs[0]])
    const [hidden2, pooled] = yield* run(
      graphs.textEncoders[1]!,
      "text_encoder_2",
      { [second.inputs[0]]: tokenIds(tokenizers[1]!, texts) },
      second.outputs.slice(0, 2)
    )
    return {
      promptEmbeds: tf.tidy(() => tf.concat([fromOrt3d(hidden1!), fromOrt3d(hidden2!)], -1)),
      pooled: tf.tensor2d(pooled!.data as Float32Array, pooled!.dims as [number, number])
    }
  })

/** The prompt's conditioning as conditioning.ts builds it on the tfjs engine; `negativePrompt` undefined is diffusers' None. */
const promptConditioning = (pipeline: OnnxPipeline, prompt: string, guided: boolean, side: number, negativePrompt: string | undefined) =>
  Effect.gen(function*() {
    const { manifest } = pipeline
    if (manifest.family === "sd") {
      return { context: yield* encodeSd(pipeline, guided ? [negativePrompt ?? "", prompt] : [prompt]) } satisfies OnnxConditioning
    }
    // StableDiffusionXLPipeline's defaults, as the tfjs engine's generate step takes them: the image's own size, crop corner (0, 0).
    const size: ImageSizeConditioning = { originalSize: [side, side], cropTopLeft: [0, 0], targetSize: [side, side] }
    const timeIds = yield* Effect.try({
      try: () => sdxlTimeIds(pipeline.addedConditions!.unet, pipeline.addedConditions!.textEncoder2, size),
      catch: (e) => failed(`${pipeline.folder}: ${(e as Error).message}`)
    })
    const zeros = guided && negativePrompt === undefined && manifest.forceZerosForEmptyPrompt
    const texts = guided && !zeros ? [negativePrompt ?? "", prompt] : [prompt]
    const encoded = yield* encodeSdxl(pipeline, manifest, texts)
    const rows = guided ? 2 : 1
    const [context, textEmbeds] = [encoded.promptEmbeds, encoded.pooled].map((x) => {
      const batch = tf.tidy(() => zeros ? tf.concat([tf.zerosLike(x), x]) : x)
      const tensor = toOrt(batch)
      tf.dispose([x, batch])
      return tensor
    }) as [ort.Tensor, ort.Tensor]
    const ids = new ort.Tensor("float32", Float32Array.from(Array.from({ length: rows }, () => timeIds).flat()), [rows, timeIds.length])
    return { context, added: { textEmbeds, timeIds: ids } } satisfies OnnxConditioning
  })

/**
 * The denoising loop of diffusers' pipelines (as samplerOf, awaiting the UNet): scale the input, predict
 * with classifier-free guidance u + s·(c − u) on the batch [unconditional, conditional], step.
 */
const sampleLatents = (
  pipeline: OnnxPipeline,
  scheduler: DiffusionScheduler,
  conditioning: OnnxConditioning,
  guidanceScale: number,
  initialNoise: tf.Tensor4D,
  noise: NoiseDraw
) =>
  Effect.gen(function*() {
    const { graphs, manifest } = pipeline
    const guided = conditioning.context.dims[0] === 2
    const [sample, timestep, hidden, textEmbeds, timeIds] = manifest.graphs.unet.inputs
    const added = conditioning.added === undefined || textEmbeds === undefined || timeIds === undefined
      ? {}
      : { [textEmbeds]: conditioning.added.textEmbeds, [timeIds]: conditioning.added.timeIds }
    let latents = tf.tidy(() => tf.mul(initialNoise, scheduler.initNoiseSigma)) as tf.Tensor4D
    const state = scheduler.start()
    // Released however the loop ends (a failed graph run included).
    yield* Effect.addFinalizer(() => Effect.sync(() => state.dispose()))
    for (const [i, t] of scheduler.timesteps.entries()) {
      const input = tf.tidy(() => {
        const scaled = scheduler.scaleModelInput(latents, i)
        return guided ? tf.concat([scaled, scaled]) : scaled
      })
      const feeds = { [sample]: toNchw(input), [timestep]: new ort.Tensor("float32", Float32Array.of(t), [1]), [hidden]: conditioning.context, ...added }
      // DDIM and DDPM scale nothing: unguided, the input is the latents themselves.
      if (input !== latents) input.dispose()
      const output = yield* runOne(graphs.unet, "unet", feeds, manifest.graphs.unet.outputs[0]).pipe(
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
const decodeAmplitude = ({ graphs, manifest }: OnnxPipeline, latents: tf.Tensor4D) =>
  Effect.gen(function*() {
    const scaled = tf.div(latents, manifest.scalingFactor) as tf.Tensor4D
    const { inputs, outputs } = manifest.graphs.vae_decoder
    const feeds = { [inputs[0]]: toNchw(scaled) }
    scaled.dispose()
    const image = yield* runOne(graphs.vaeDecoder, "vae_decoder", feeds, outputs[0])
    return tf.tidy(() => {
      const unit = tf.clipByValue(tf.add(tf.div(fromNchw(image), 2), 0.5), 0, 1)
      return tf.squeeze(tf.mean(unit, -1), [0]).dataSync() as Float32Array
    })
  })

/** The scheduler arithmetic runs on the tfjs backend in use, else on the one the tfjs engine would choose (selectBackend). */
const schedulerBackend = Effect.suspend(() =>
  tf.engine().backendName == null
    ? Effect.asVoid(selectBackend()).pipe(Effect.mapError((e) => failed(e.message)))
    : Effect.tryPromise({ try: () => tf.ready(), catch: (e) => failed(`the tfjs backend: ${(e as Error).message}`) })
)

/** The config fields SDXL's time ids are checked against (sdxlTimeIds), from the export's config.json files. */
const UnetAddedConfig = Schema.Struct({
  addition_time_embed_dim: Schema.optionalWith(Schema.NullOr(Schema.Int), { default: () => null }),
  projection_class_embeddings_input_dim: Schema.optionalWith(Schema.NullOr(Schema.Int), { default: () => null })
})
// transformers' CLIPTextConfig default.
const ProjectionConfig = Schema.Struct({ projection_dim: Schema.optionalWith(Schema.Int, { default: () => 512 }) })

const readJson = (file: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file).pipe(Effect.mapError((e) => unreadable(file, e)))
    return yield* Effect.try({ try: () => JSON.parse(text) as unknown, catch: (e) => unreadable(file, e as Error) })
  })

const readConfig = <A, I>(file: string, schema: Schema.Schema<A, I>) =>
  Effect.flatMap(readJson(file), (json) => Effect.mapError(Schema.decodeUnknown(schema)(json), (e) => unreadable(file, e)))

/** An ONNX export opened: its graphs' sessions (released with the scope), tokenizers and scheduler config. */
export interface OnnxPipeline {
  readonly folder: string
  readonly manifest: OnnxManifest
  readonly graphs: Graphs
  /** In the text encoders' order. */
  readonly tokenizers: ReadonlyArray<ClipTokenizer>
  readonly schedulerConfig: unknown
  readonly schedulerFile: string
  /** SDXL: the UNet's and the second text encoder's configs that size its added conditions. */
  readonly addedConditions?: {
    readonly unet: { readonly config: typeof UnetAddedConfig.Type }
    readonly textEncoder2: { readonly config: typeof ProjectionConfig.Type }
  }
}

export const openOnnxPipeline = (folder: string, manifest: OnnxManifest, providers: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const schedulerFile = join(folder, manifest.scheduler)
    const schedulerConfig = yield* readJson(schedulerFile)
    const tokenizerFolders = manifest.family === "sdxl" ? [manifest.tokenizer, manifest.tokenizer_2] : [manifest.tokenizer]
    const tokenizers = yield* Effect.forEach(tokenizerFolders, (t) => loadClipTokenizer(join(folder, t)).pipe(Effect.mapError((e) => failed(e.message))))
    // The exporter copies each model's config.json next to its graph.
    const configOf = (graph: { readonly file: string }) => join(folder, dirname(graph.file), "config.json")
    const addedConditions = manifest.family === "sdxl"
      ? {
        unet: { config: yield* readConfig(configOf(manifest.graphs.unet), UnetAddedConfig) },
        textEncoder2: { config: yield* readConfig(configOf(manifest.graphs.text_encoder_2), ProjectionConfig) }
      }
      : undefined
    const graphs = yield* openGraphs(folder, manifest, providers)
    const pipeline: OnnxPipeline = {
      folder,
      manifest,
      graphs,
      tokenizers,
      schedulerConfig,
      schedulerFile,
      ...(addedConditions === undefined ? {} : { addedConditions })
    }
    return pipeline
  })

/** Every prompt × seed × replicate of the generation, written as the generate step writes them. */
export const generateOnnxSamples = (pipeline: OnnxPipeline, request: Omit<OnnxGenerateRequest, "model" | "manifest">) =>
  Effect.gen(function*() {
    const { generate: g } = request
    const { manifest } = pipeline
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
      const conditioning = yield* promptConditioning(pipeline, prompt.text, guided, side, negativePrompt)
      for (const seed of g.seeds) {
        for (let replicate = 0; replicate < g.samplesPerPrompt; replicate++) {
          const stream = gaussianStream(seed, replicate)
          const initial = drawNoise(stream, [1, latentSide, latentSide, manifest.latentChannels])
          const latents = yield* Effect.scoped(
            sampleLatents(pipeline, yield* scheduler(), conditioning, g.guidanceScale, initial, (shape) => drawNoise(stream, shape))
          )
            .pipe(Effect.ensuring(Effect.sync(() => initial.dispose())))
          const amplitude = yield* decodeAmplitude(pipeline, latents).pipe(Effect.ensuring(Effect.sync(() => latents.dispose())))
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
  const fs = yield* FileSystem.FileSystem
  const runtime = yield* Effect.cached(Effect.provideService(onnxRuntimeInfo, FileSystem.FileSystem, fs))
  return {
    runtime,
    generate: (request) =>
      Effect.scoped(
        Effect.flatMap(runtime, (info) => openOnnxPipeline(request.model, request.manifest, info.providers)).pipe(
          Effect.flatMap((pipeline) => generateOnnxSamples(pipeline, request))
        )
      ).pipe(Effect.provideService(ImageIO, io), Effect.provideService(FileSystem.FileSystem, fs))
  } satisfies OnnxEngine["Type"]
})

/** The ONNX engine as a layer (it needs ImageIO to write the samples and FileSystem to read the export). */
export const OnnxEngineLive = Layer.effect(OnnxEngine, makeOnnxEngine)
