import { FileSystem } from "@effect/platform"
import { Effect, Schema } from "effect"
import { dirname, join } from "node:path"
import type { ResolvedAdaptation } from "../../framework/declaration/adaptation.ts"
import { negativePromptOf, promptsOf } from "../../framework/declaration/generation.ts"
import {
  clipModelFolder,
  Engine,
  EngineError,
  type ExportRequest,
  type ExportSummary,
  type GeneratedSample,
  type GenerateRequest,
  type OnnxExportRequest,
  type OnnxExportSummary,
  type TrainRequest,
  validationFolder
} from "../../framework/services/engine.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { sampleStem, writeSampleImages, writeSamplesIndex } from "../images/sample-files.ts"
import { LATENT_INDEX, LatentIndex } from "../tfjs/encoding/latent-cache.ts"
import { TEXT_INDEX, TextIndex } from "../tfjs/encoding/text-cache.ts"
import { controlNetBesideNote, exportModel } from "../tfjs/export/export-model.ts"
import { writeIndexFile } from "../tfjs/training/index-files.ts"
import { spellOutToken } from "../tfjs/training/learned-token.ts"
import { controlNetFolderOf, MODEL_MANIFEST, ModelManifest, readModelManifest, TRAINING_HISTORY, weightsUsed } from "../tfjs/training/trained-model-files.ts"
import { StepRecord } from "../tfjs/training/training-checkpoint.ts"
import { readPreparedIndex } from "../../framework/steps/prepared-dataset.ts"
import { configuredPython, noPython, type PythonLocation, probeEnvironment } from "./python-environment.ts"
import { embeddingFileToken } from "./embedding-file.ts"
import { runWorker } from "./worker-process.ts"
import type { WorkerMessage } from "./worker-protocol.ts"

/**
 * The torch engine as the Engine service: every operation is one run of the Python worker
 * (worker-process.ts), which does the tensor work on PyTorch, diffusers, PEFT and accelerate. The files are
 * the tfjs engine's: the worker writes tensors (caches' shards, the trained model's weights, raw samples),
 * this side decodes what it reports and writes the index files, the trained model's manifest, the samples'
 * TIFF, PNG and samples.json with the same code as the tfjs engine — so evaluate, report, the tracker and
 * `sardine export` read them unchanged, and either engine reads the other's outputs.
 */

const failed = (operation: string) => (error: { readonly message: string }) => new EngineError({ operation, reason: error.message, cause: error })

const decode = <A, I>(schema: Schema.Schema<A, I>, operation: string, value: unknown) =>
  Schema.decodeUnknown(schema)(value).pipe(
    Effect.mapError((e) => new EngineError({ operation, reason: `the torch worker's result is not as expected: ${e.message}`, cause: e }))
  )

const TrainResult = Schema.Struct({
  steps: Schema.Int,
  ema: Schema.Boolean,
  history: Schema.Array(StepRecord),
  lora: Schema.Record({
    key: Schema.String,
    value: Schema.Array(Schema.Struct({
      module: Schema.String,
      kind: Schema.Literal("linear", "conv"),
      inFeatures: Schema.Int,
      outFeatures: Schema.Int,
      kernel: Schema.Tuple(Schema.Int, Schema.Int)
    }))
  })
})
type TrainResult = typeof TrainResult.Type

/** The trained model's manifest, as trained-model-files.ts defines it (version 2: the adaptation as the train step received it). */
const manifestOf = (adaptation: ResolvedAdaptation, result: TrainResult): ModelManifest => ({
  format: "sardine-trained-model",
  version: 2,
  layout: "tfjs",
  family: adaptation.components.text_encoder_2 === undefined ? "sd" : "sdxl",
  steps: result.steps,
  adaptation,
  ema: result.ema
})

/** The engine's own file operations, each failing with an EngineError that names the path. */
const filesOf = (fs: FileSystem.FileSystem) => {
  const failedOn = (operation: string, what: string) => (e: { readonly message: string }) =>
    new EngineError({ operation, reason: `cannot ${what}: ${e.message}`, cause: e })
  return {
    /** A raw float32 amplitude file the worker wrote. */
    readRaw: (file: string, operation: string) =>
      fs.readFile(file).pipe(
        Effect.map((bytes) => {
          const values = new Float32Array(bytes.byteLength / 4)
          new Uint8Array(values.buffer).set(bytes.subarray(0, values.byteLength))
          return values
        }),
        Effect.mapError(failedOn(operation, `read the worker's image ${file}`))
      ),
    remove: (path: string, operation: string) => fs.remove(path, { recursive: true, force: true }).pipe(Effect.mapError(failedOn(operation, `remove ${path}`))),
    /** The folder an output goes into. */
    makeParent: (file: string, operation: string) =>
      fs.makeDirectory(dirname(file), { recursive: true }).pipe(Effect.mapError(failedOn(operation, `create the folder of ${file}`)))
  }
}

/** A slug of a prompt for MLflow's image series. */
const slug = (text: string) => text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 60)

/** What the worker needs to apply a trained model folder (the manifest read and checked here). */
const trainedModel = (modelDir: string, useEma: boolean, operation: string) =>
  Effect.gen(function*() {
    const manifest = yield* readModelManifest(modelDir).pipe(Effect.mapError(failed(operation)))
    const loraScales = Object.fromEntries(
      Object.entries(manifest.adaptation.components).flatMap(([name, treatment]) => (treatment?._tag === "lora" ? [[name, treatment.scale]] : []))
    )
    return { dir: modelDir, useEma: useEma && manifest.ema, loraScales, spellings: manifest.adaptation.token?.spellings ?? null, manifest }
  })

/**
 * A conditioned experiment's scenes for the worker (adapters/tfjs/sampling/condition-scenes.ts on the tfjs
 * engine): the prepare-data folder of generate.conditions, each scene's caption as a prompt and its
 * conditioning image's file, with the trained model's ControlNet folder (the EMA's when used) at the declared
 * scale and guess mode. Without a trained ControlNet (a baseline has none) or the scenes, generation is refused.
 */
const conditionScenes = (request: GenerateRequest, manifest: ModelManifest | undefined, side: number) =>
  Effect.gen(function*() {
    const declared = request.adaptation.controlnet!
    const refuse = (reason: string) => Effect.fail(new EngineError({ operation: "generate", reason: `generate.conditions: ${reason}` }))
    if (request.modelDir === undefined || manifest?.adaptation.controlnet === undefined) {
      return yield* refuse("the experiment is conditioned, but there is no trained ControlNet to sample with (a baseline has none); train the experiment")
    }
    const dir = request.conditionsDir
    if (dir === undefined) return yield* refuse("the experiment is conditioned, but no prepared scenes were given to sample")
    const prepared = yield* readPreparedIndex(dir).pipe(Effect.mapError(failed("generate")))
    if (prepared.conditioning === undefined || prepared.samples.length === 0) {
      return yield* refuse(`${join(dir, "index.json")} holds no scene with a conditioning image (${declared.column})`)
    }
    if (prepared.width !== side || prepared.height !== side) {
      return yield* refuse(
        `the scenes of ${dir} were prepared at ${prepared.width}×${prepared.height} pixels, but samples are ${side}×${side}; prepare the conditions at the generation's resolution`
      )
    }
    const files = yield* Effect.forEach(prepared.samples, (sample) =>
      sample.condition === undefined
        ? refuse(`${join(dir, sample.file)}: the prepared scene has no conditioning image`)
        : Effect.succeed(join(dir, sample.condition)))
    return {
      jobs: prepared.samples.map((sample) => ({ text: sample.caption, split: "seen" as const })),
      conditions: prepared.samples.map((sample, scene) => ({ scene, id: sample.id, source: sample.source })),
      control: {
        folder: controlNetFolderOf(request.modelDir, manifest, request.generate.useEma),
        conditions: files,
        channels: prepared.conditioning.channels,
        scale: declared.scale,
        guessMode: declared.guessMode
      }
    }
  })

/** The ONNX opset of `sardine export --format onnx` (onnxruntime ≥ 1.14 runs it; written into the export's manifest). */
export const ONNX_OPSET = 17

/** Which weights an export of a trained model carries, and what its users must know. */
const summaryOf = (manifest: ModelManifest, useEma: boolean): ExportSummary => {
  const token = manifest.adaptation.token
  return {
    weights: weightsUsed(manifest, useEma),
    step: manifest.steps,
    notes: token === null || token.vectors === 1 ? [] : [
      `${token.token} has ${token.vectors} vectors (${token.spellings.join(", ")}); diffusers expands "${token.token}" in prompts to all of them`
    ]
  }
}

export interface TorchEngineOptions {
  /** The Python to run the worker with; SARDINE_PYTHON or the default venv when absent. */
  readonly python?: PythonLocation
}

/** The torch engine over one Python environment, checked once (on first use) against the pins. */
export const makeTorchEngine = (options: TorchEngineOptions = {}) =>
  Effect.gen(function*() {
    const io = yield* ImageIO
    const files = filesOf(yield* FileSystem.FileSystem)
    const location = options.python ?? configuredPython()
    const environment = yield* Effect.cached(location === undefined ? Effect.fail(noPython("torch")) : probeEnvironment(location))
    const worker = (
      operation: string,
      request: Record<string, unknown>,
      onMessage: (m: WorkerMessage) => Effect.Effect<void, EngineError> = () => Effect.void
    ) =>
      Effect.gen(function*() {
        yield* environment
        return (yield* runWorker({ ...location!, operation, request, onMessage })).value
      })
    const progressOf = (sink: (done: number, total: number, unit: string) => Effect.Effect<void>) => (m: WorkerMessage) =>
      m.type === "progress" ? sink(m.done, m.total, m.unit) : Effect.void

    const train = (request: TrainRequest) =>
      Effect.gen(function*() {
        const { adaptation } = request
        const validation = join(request.workDir, validationFolder)
        const onMessage = (m: WorkerMessage): Effect.Effect<void, EngineError> => {
          switch (m.type) {
            case "progress":
              return request.progress(m.done, m.total, m.unit)
            case "log":
              return request.log(m.message)
            case "metrics": {
              const finite = Object.fromEntries(Object.entries(m.values).filter((e): e is [string, number] => e[1] !== null))
              return request.metrics(m.step, finite)
            }
            case "image":
              return Effect.gen(function*() {
                const png = join(validation, `step-${String(m.step).padStart(8, "0")}`, `p${String(m.promptIndex).padStart(2, "0")}.png`)
                const amplitude = yield* files.readRaw(m.file, "train")
                yield* io.writePng8(png, { width: m.width, height: m.height, channels: 1, data: amplitude.map((v) => v * 255) }).pipe(
                  Effect.mapError(failed("train"))
                )
                yield* files.remove(m.file, "train")
                if (request.image !== undefined) yield* request.image(`validation/${String(m.promptIndex).padStart(2, "0")}-${slug(m.prompt)}`, m.step, png)
              })
            default:
              return Effect.void
          }
        }
        const value = yield* worker("train", {
          base: request.base.path,
          adaptation,
          ...(request.controlNetFolder === undefined ? {} : { controlNetFolder: request.controlNetFolder }),
          train: { ...request.train, validationEvery: request.train.validationEvery ?? request.train.checkpointEvery },
          dataDir: request.dataDir,
          workDir: request.workDir,
          processes: request.processes ?? 1,
          sharding: request.sharding ?? "none",
          nodes: request.nodes ?? 1,
          ...(request.latentsDir === undefined ? {} : { latentsDir: request.latentsDir }),
          ...(request.textDir === undefined ? {} : { textDir: request.textDir }),
          ...(request.validation === undefined ? {} : { validation: request.validation })
        }, onMessage)
        yield* files.remove(join(validation, ".raw"), "train")
        const result = yield* decode(TrainResult, "train", value)
        yield* writeIndexFile(join(request.workDir, TRAINING_HISTORY), { steps: result.history }).pipe(Effect.mapError(failed("train")))
        const manifest = yield* decode(ModelManifest, "train", manifestOf(adaptation, result))
        yield* writeIndexFile(join(request.workDir, MODEL_MANIFEST), manifest).pipe(Effect.mapError(failed("train")))
      })

    const generate = (request: GenerateRequest) =>
      Effect.gen(function*() {
        const trained = request.modelDir === undefined ? undefined : yield* trainedModel(request.modelDir, request.generate.useEma, "generate")
        const adapterFiles = request.adapterFiles ?? []
        const [first, second] = adapterFiles.flatMap((f) => (f.kind === "embedding" ? [f] : []))
        if (second !== undefined) {
          return yield* new EngineError({ operation: "generate", reason: `${second.file}: a second embedding file; sardine applies one` })
        }
        if (first !== undefined && trained?.spellings != null) {
          return yield* new EngineError({
            operation: "generate",
            reason: `${first.file}: the model already has a learned token; sardine applies one token at a time`
          })
        }
        const embedding = first === undefined ? undefined : yield* embeddingFileToken(first.file, first.token)
        // A learned token is written out as all its spellings, as diffusers' maybe_convert_prompt does, also where a prompt writes it literally.
        const spellings = trained?.spellings ?? embedding?.spellings
        const token = spellings?.join(" ") ?? request.adaptation.token?.token
        const convert = (text: string) => (spellings == null ? text : spellOutToken(text, spellings))
        const substitute = (declared: string, field: string) => {
          const text = convert(declared)
          return !text.includes("{token}")
            ? Effect.succeed(text)
            : token === undefined
            ? Effect.fail(new EngineError({ operation: "generate", reason: `generate.${field}: uses {token} but no learned token was given` }))
            : Effect.succeed(text.replaceAll("{token}", token))
        }
        const { generate: g } = request
        const side = g.resolution ?? request.resolution
        const scenes = request.adaptation.controlnet === undefined ? undefined : yield* conditionScenes(request, trained?.manifest, side)
        // A conditioned experiment samples its scenes in place of the prompts (each caption, the declared negative prompt), as the tfjs engine does.
        const prompts = scenes?.jobs ?? promptsOf(request.generate)
        const texts = yield* Effect.forEach(prompts, (p, i) => scenes === undefined ? substitute(p.text, `prompts[${i}]`) : Effect.succeed(convert(p.text)))
        const negatives = yield* Effect.forEach(prompts, (p, i) => {
          const own = "negativePrompt" in p ? p.negativePrompt : undefined
          const negative = scenes === undefined ? negativePromptOf(request.generate, p) : g.negativePrompt
          const field = own !== undefined ? `prompts[${i}].negativePrompt` : "negativePrompt"
          return negative === undefined ? Effect.succeed(undefined) : substitute(negative, field)
        })
        const total = prompts.length * g.seeds.length * g.samplesPerPrompt
        const raw = join(request.outDir, ".torch-raw")
        const samples: Array<GeneratedSample> = []
        const onMessage = (m: WorkerMessage) =>
          m.type !== "sample" ? Effect.void : Effect.gen(function*() {
            const stem = sampleStem(m.promptIndex, m.seed, m.replicate)
            yield* writeSampleImages(request.outDir, stem, yield* files.readRaw(m.file, "generate"), side).pipe(
              Effect.provideService(ImageIO, io),
              Effect.mapError(failed("generate"))
            )
            yield* files.remove(m.file, "generate")
            const prompt = prompts[m.promptIndex]!
            const negativePrompt = negatives[m.promptIndex]
            samples.push({
              prompt: texts[m.promptIndex]!,
              declaredPrompt: prompt.text,
              ...(negativePrompt === undefined ? {} : { negativePrompt }),
              promptIndex: m.promptIndex,
              split: prompt.split,
              seed: m.seed,
              tiff: `${stem}.tif`,
              png: `${stem}.png`,
              ...(scenes === undefined ? {} : { condition: scenes.conditions[m.promptIndex]! })
            })
            yield* request.progress(samples.length, total, "images")
          })
        yield* worker("generate", {
          base: request.base.path,
          trained: trained === undefined ? null : { dir: trained.dir, useEma: trained.useEma, loraScales: trained.loraScales, spellings: trained.spellings },
          adapterFiles: adapterFiles.map((f) =>
            f.kind === "lora" ? f : { kind: "embedding", file: f.file, keys: embedding!.keys, spellings: embedding!.spellings }
          ),
          prompts: texts,
          // null: diffusers' negative_prompt=None.
          negativePrompts: negatives.map((n) => n ?? null),
          seeds: g.seeds,
          samplesPerPrompt: g.samplesPerPrompt,
          sampler: g.sampler,
          schedulerConfig: g.schedulerConfig ?? {},
          steps: g.steps,
          guidanceScale: g.guidanceScale,
          eta: g.eta,
          resolution: side,
          rawDir: raw,
          ...(scenes === undefined ? {} : { control: scenes.control })
        }, onMessage)
        yield* files.remove(raw, "generate")
        yield* writeSamplesIndex(request.outDir, samples).pipe(Effect.mapError(failed("generate")))
      })

    const exportOnnx = (request: OnnxExportRequest) =>
      Effect.gen(function*() {
        const trained = request.modelDir === undefined ? undefined : yield* trainedModel(request.modelDir, request.useEma, "export")
        yield* files.makeParent(request.out, "export")
        yield* worker("export-onnx", {
          base: request.base.path,
          out: request.out,
          opset: ONNX_OPSET,
          trained: trained === undefined ? null : { dir: trained.dir, useEma: trained.useEma, loraScales: trained.loraScales, spellings: trained.spellings }
        })
        const summary: OnnxExportSummary = { opset: ONNX_OPSET, ...(trained === undefined ? {} : { trained: summaryOf(trained.manifest, request.useEma) }) }
        return summary
      })

    const exportTrained = (request: ExportRequest) =>
      request.format === "diffusers"
        ? Effect.gen(function*() {
          const trained = yield* trainedModel(request.modelDir, request.useEma, "export")
          const controlnet = trained.manifest.adaptation.controlnet === undefined
            ? undefined
            : controlNetFolderOf(trained.dir, trained.manifest, request.useEma)
          yield* files.makeParent(request.out, "export")
          yield* worker("export", {
            base: request.base.path,
            out: request.out,
            trained: { dir: trained.dir, useEma: trained.useEma, loraScales: trained.loraScales, spellings: trained.spellings },
            controlnet: controlnet ?? null
          })
          const summary = summaryOf(trained.manifest, request.useEma)
          return controlnet === undefined ? summary : { ...summary, notes: [...summary.notes, controlNetBesideNote(request.out)] }
        })
        // The LoRA and embedding formats are the trained model's tensors renamed: no tensor work, one writer.
        : exportModel({ base: request.base.path, modelDir: request.modelDir, format: request.format, out: request.out, useEma: request.useEma }).pipe(
          Effect.mapError(failed("export"))
        )

    return {
      backend: Effect.map(environment, (env) =>
        `torch ${env.versions.torch ?? "?"} on ${
          env.device === "cpu" ? `cpu (${env.threads} threads)` : env.devices.map((d) =>
            d.name
          ).join(", ") || env.device
        }`),
      initModel: (request) =>
        Effect.asVoid(worker("init-model", { architecture: request.architecture, family: request.family, seed: request.seed, out: request.out })),
      encodeLatents: (request) =>
        Effect.gen(function*() {
          const value = yield* worker(
            "encode-latents",
            { base: request.base.path, dataDir: request.dataDir, outDir: request.outDir },
            progressOf(request.progress)
          )
          const index = yield* decode(LatentIndex, "encode-latents", value)
          yield* writeIndexFile(join(request.outDir, LATENT_INDEX), index).pipe(Effect.mapError(failed("encode-latents")))
        }),
      encodeText: (request) =>
        Effect.gen(function*() {
          const value = yield* worker(
            "encode-text",
            { base: request.base.path, dataDir: request.dataDir, outDir: request.outDir },
            progressOf(request.progress)
          )
          const index = yield* decode(TextIndex, "encode-text", value)
          yield* writeIndexFile(join(request.outDir, TEXT_INDEX), index).pipe(Effect.mapError(failed("encode-text")))
        }),
      train,
      trainClip: (request) =>
        Effect.fail(
          new EngineError({
            operation: "train-clip",
            reason: `the torch engine has no CLIP trainer (train-clip runs on the tfjs engine); asked for ${join(request.workDir, clipModelFolder)}`
          })
        ),
      generate,
      export: exportTrained,
      exportOnnx
    } satisfies Engine["Type"]
  })
