/**
 * Test stand-ins for the engine's steps (encode-latents, encode-text, train, generate), next to the
 * PRODUCTION prepare-data, evaluate and report steps, so a study runs end to end through the real
 * runner without the diffusion engine. Each stand-in does small real work on real files:
 *   - encode-latents: 8 × 8 block means of the prepared pixels, as float32;
 *   - encode-text: the prepared captions' word counts;
 *   - train: a 3 × 3 convolutional noise predictor trained by Adam with the declared learning
 *     rates and schedule on the prepared images, logging loss / lr/<group> / grad_norm /
 *     images_per_s per step to training-log.jsonl in the production format, and with
 *     train.validationLoss the engines' held-out split and its validation_loss at the declared steps;
 *   - generate: synthetic SAR scenes from the project's generator, written in the generate output
 *     format (images/*.tif float32 in [0, 1], *.png, samples.json last). The number of looks follows
 *     the strategy (baseline 1, LoRA UNet 2, full UNet 3, +1 with a learned token), so the metrics
 *     really differ between strategies; the scenes depend on the trained model too, so training
 *     replicates (other seeds) give other samples.
 */
import type { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { mkdir, readFile, rename, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { DatasetsLive } from "../../adapters/data/datasets-live.ts"
import { hashString, mixSeed, SeededRandom } from "../../adapters/data/seeded-random.ts"
import { generateScene } from "../../adapters/data/synthetic/scene-generator.ts"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { OnnxClipScorersLive } from "../../adapters/onnx/onnx-clip-scorer.ts"
import { sampleStem } from "../../adapters/images/sample-files.ts"
import { canonicalJson } from "../../framework/declaration/canonical-json.ts"
import { promptsOf } from "../../framework/declaration/generation.ts"
import { treatmentsOf, type ResolvedAdaptation } from "../../framework/declaration/adaptation.ts"
import type { Training } from "../../framework/declaration/training.ts"
import { learningRateMetric, trainingMetrics } from "../../framework/metrics/metric-catalog.ts"
import type { StepKind } from "../../framework/plan/step.ts"
import { type StepContext, type StepError, StepFailed, type StepHandler, type StepHandlers } from "../../framework/runner/step-handler.ts"
import { StepImplementations } from "../../framework/runner/step-implementations.ts"
import { normaliseMeanStd } from "../../framework/sar/normalisation.ts"
import { Datasets } from "../../framework/services/datasets.ts"
import { samplesIndexFile, type GeneratedSample } from "../../framework/services/engine.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { ReportRenderer } from "../../framework/services/report-renderer.ts"
import { ClipScorers } from "../../framework/services/scorer.ts"
import { evaluate } from "../../framework/steps/evaluate.ts"
import { prepareData } from "../../framework/steps/prepare-data.ts"
import { readPreparedIndex, readPreparedPixels } from "../../framework/steps/prepared-dataset.ts"
import { report } from "../../framework/steps/report.ts"
import { appendTrainingLog, finishTrainingLog } from "../../framework/steps/training-log.ts"
import { ReportRendererLive } from "../../reports/report-renderer-live.ts"
import { heldOutSplit } from "../../adapters/tfjs/training/validation-loss.ts"

const writeAtomic = (file: string, bytes: string | Uint8Array) =>
  Effect.promise(async () => {
    await writeFile(`${file}.tmp`, bytes)
    await rename(`${file}.tmp`, file)
  })

const standInEncodeLatents = (ctx: StepContext<"encode-latents">) =>
  Effect.gen(function*() {
    const dir = ctx.input("data").dir
    const index = yield* readPreparedIndex(dir)
    const block = 8
    const side = Math.floor(index.width / block)
    const out = new Float32Array(index.samples.length * side * side)
    for (const [n, sample] of index.samples.entries()) {
      const pixels = yield* readPreparedPixels(dir, sample)
      for (let by = 0; by < side; by++) {
        for (let bx = 0; bx < side; bx++) {
          let sum = 0
          for (let y = 0; y < block; y++) for (let x = 0; x < block; x++) sum += pixels[((by * block + y) * index.width + bx * block + x) * index.channels]!
          out[(n * side + by) * side + bx] = sum / (block * block)
        }
      }
    }
    yield* writeAtomic(join(ctx.workDir, "latents.f32"), new Uint8Array(out.buffer))
  })

const standInEncodeText = (ctx: StepContext<"encode-text">) =>
  Effect.gen(function*() {
    const index = yield* readPreparedIndex(ctx.input("data").dir)
    yield* writeAtomic(join(ctx.workDir, "text.json"), JSON.stringify(index.samples.map((s) => s.caption.split(/\s+/).length)))
  })

/** The optimiser groups an adaptation trains, named as the engine names its lr/<group> metrics (learningRateMetric). */
const trainedGroups = (adaptation: ResolvedAdaptation) => {
  const groups: Array<{ name: string; lr: number }> = []
  for (const [name, t] of treatmentsOf(adaptation)) if (t._tag !== "frozen") groups.push({ name, lr: t.lr })
  if (adaptation.token !== null) groups.push({ name: "token", lr: adaptation.token.lr })
  return groups
}

/** Linear warm-up, then constant or a half cosine to zero (the declared schedule). */
const scheduled = (train: Training, base: number, step: number) => {
  const { warmupSteps, decay } = train.lrSchedule
  if (step < warmupSteps) return (base * (step + 1)) / warmupSteps
  if (decay === "constant") return base
  const progress = (step - warmupSteps) / Math.max(1, train.steps - warmupSteps)
  return base * 0.5 * (1 + Math.cos(Math.PI * progress))
}

const standInTrain = (ctx: StepContext<"train">) =>
  Effect.gen(function*() {
    const { adaptation, train } = ctx.step.config
    const dataDir = ctx.input("data").dir
    const index = yield* readPreparedIndex(dataDir)
    const all = yield* Effect.forEach(index.samples, (s) => readPreparedPixels(dataDir, s))
    const groups = trainedGroups(adaptation)
    const rng = new SeededRandom(train.seed, 0x7a11)
    const { width, height, channels } = index
    // train.validationLoss: the engines' seeded split, and a fixed noise per held-out image drawn once.
    const validation = train.validationLoss
    // The report's studies hold out a fraction; a held-out dataset is the engines' to test.
    const split = validation?.fraction === undefined
      ? undefined
      : yield* Effect.orDie(heldOutSplit(train.seed, all.length, validation.fraction, join(dataDir, "index.json")))
    const images = split === undefined ? all : split.training.map((i) => all[i]!)
    const fixed = new SeededRandom(train.seed, 0x7a12)
    const heldOut = (split?.heldOut ?? []).map((i) => ({ image: all[i]!, noise: Float64Array.from({ length: width * height }, () => fixed.normal()) }))
    // Parameters: a 3 × 3 filter (first group) and a bias (every further group adds its rate to it), trained by Adam.
    const parameters = new Float64Array(10)
    const moment1 = new Float64Array(10)
    const moment2 = new Float64Array(10)
    // Declared rates are for diffusion models; this model has 10 parameters and needs larger steps.
    const gain = 20
    /** The mean squared error of the noise predicted from `image` noised by `sigma`·`noise`, its gradient added into `gradient`. */
    const denoisingError = (image: Float32Array, sigma: number, noise: Float64Array, gradient?: Float64Array) => {
      const noisy = (x: number, y: number) => {
        const cx = Math.min(width - 1, Math.max(0, x))
        const cy = Math.min(height - 1, Math.max(0, y))
        const p = cy * width + cx
        return image[p * channels]! + sigma * noise[p]!
      }
      let loss = 0
      const n = width * height
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          let prediction = parameters[9]!
          for (let k = 0; k < 9; k++) prediction += parameters[k]! * noisy(x + (k % 3) - 1, y + Math.floor(k / 3) - 1)
          const error = prediction - noise[y * width + x]!
          loss += (error * error) / n
          if (gradient === undefined) continue
          for (let k = 0; k < 9; k++) gradient[k]! += (2 * error * noisy(x + (k % 3) - 1, y + Math.floor(k / 3) - 1)) / n
          gradient[9]! += (2 * error) / n
        }
      }
      return loss
    }
    const heldOutError = () => heldOut.reduce((a, h) => a + denoisingError(h.image, 0.5, h.noise), 0) / heldOut.length
    // As the engines do: the held-out loss before the first update.
    if (heldOut.length > 0) {
      const values = { [trainingMetrics.validationLoss]: heldOutError() }
      yield* appendTrainingLog(ctx.workDir, 0, values)
      yield* ctx.tracking.metrics(0, values)
    }
    for (let step = 0; step < train.steps; step++) {
      const started = performance.now()
      const image = images[Math.floor(rng.uniform() * images.length)]!
      const sigma = 0.1 + rng.uniform() * 0.9
      const noise = new Float64Array(width * height)
      for (let i = 0; i < noise.length; i++) noise[i] = rng.normal()
      const gradient = new Float64Array(10)
      const loss = denoisingError(image, sigma, noise, gradient)
      const rates = Object.fromEntries(groups.map((g) => [learningRateMetric(g.name), scheduled(train, g.lr, step)]))
      const [first, ...rest] = groups
      if (first === undefined) throw new Error("a training has at least one parameter group")
      const rateOf = (k: number) =>
        gain * (k < 9 || rest.length === 0 ? rates[learningRateMetric(first.name)]! : rest.reduce((a, g) => a + rates[learningRateMetric(g.name)]!, 0))
      const { beta1, beta2, epsilon } = train.optimizer
      for (let k = 0; k < 10; k++) {
        moment1[k] = beta1 * moment1[k]! + (1 - beta1) * gradient[k]!
        moment2[k] = beta2 * moment2[k]! + (1 - beta2) * gradient[k]! ** 2
        const m = moment1[k]! / (1 - beta1 ** (step + 1))
        const v = moment2[k]! / (1 - beta2 ** (step + 1))
        parameters[k]! -= (rateOf(k) * m) / (Math.sqrt(v) + epsilon)
      }
      const norm = Math.sqrt(gradient.reduce((a, g) => a + g * g, 0))
      const measured = validation !== undefined && ((step + 1) % (validation.every ?? train.checkpointEvery) === 0 || step + 1 === train.steps)
      const values = {
        [trainingMetrics.loss]: loss,
        ...(measured && heldOut.length > 0 ? { [trainingMetrics.validationLoss]: heldOutError() } : {}),
        [trainingMetrics.gradNorm]: norm,
        [trainingMetrics.imagesPerSecond]: 1000 / Math.max(1e-3, performance.now() - started),
        ...rates
      }
      yield* appendTrainingLog(ctx.workDir, step + 1, values)
      yield* ctx.tracking.metrics(step + 1, values)
      yield* ctx.progress(step + 1, train.steps, "steps")
    }
    yield* finishTrainingLog(ctx.workDir)
    yield* writeAtomic(join(ctx.workDir, "model.json"), JSON.stringify({ filter: [...parameters.slice(0, 9)], bias: parameters[9] }))
  })

/** Looks of the stand-in's samples: more for stronger strategies, so their speckle nears the reference's. */
export const standInLooks = (adaptation: ResolvedAdaptation, trained: boolean): number =>
  !trained ? 1 : (adaptation.components.unet._tag === "full" ? 3 : adaptation.components.unet._tag === "lora" ? 2 : 1) + (adaptation.token === null ? 0 : 1)

const standInGenerate = (ctx: StepContext<"generate">) =>
  Effect.gen(function*() {
    const io = yield* ImageIO
    const { adaptation, generate } = ctx.step.config
    const model = ctx.inputs("model")[0]
    const trained = model !== undefined
    const looks = standInLooks(adaptation, trained)
    const side = generate.resolution ?? 64
    const weights = model === undefined ? "" : yield* Effect.promise(() => readFile(join(model.dir, "model.json"), "utf8"))
    const strategySeed = hashString(`${canonicalJson(adaptation)}/${weights}`)
    const prompts = promptsOf(generate)
    yield* Effect.promise(() => mkdir(join(ctx.workDir, "images"), { recursive: true }))
    const samples: Array<GeneratedSample> = []
    const total = prompts.length * generate.seeds.length * generate.samplesPerPrompt
    for (const [promptIndex, prompt] of prompts.entries()) {
      for (const seed of generate.seeds) {
        for (let replicate = 0; replicate < generate.samplesPerPrompt; replicate++) {
          const scene = generateScene(
            { size: side, seed: mixSeed(strategySeed, seed), looks, exclude: [], lookDirection: "right", incidenceAngle: 35 },
            promptIndex * 1000 + replicate,
            { sar: true, optical: false }
          )
          // The generate format holds normalised amplitude clipped to [0, 1], as the engine writes it.
          const data = normaliseMeanStd(scene.sar!.amplitude, { k: 3 }).map((v) => Math.min(1, Math.max(0, v)))
          const stem = sampleStem(promptIndex, seed, replicate)
          const raster = { width: side, height: side, channels: 1, data }
          yield* io.writeFloatTiff(join(ctx.workDir, `${stem}.tif`), raster)
          yield* io.writePng8(join(ctx.workDir, `${stem}.png`), { ...raster, data: data.map((v) => v * 255) })
          const token = adaptation.token?.token
          samples.push({
            prompt: token === undefined ? prompt.text : prompt.text.replaceAll("{token}", token),
            declaredPrompt: prompt.text,
            promptIndex,
            split: prompt.split,
            seed,
            tiff: `${stem}.tif`,
            png: `${stem}.png`
          })
          yield* ctx.progress(samples.length, total, "images")
        }
      }
    }
    yield* writeAtomic(join(ctx.workDir, samplesIndexFile), `${JSON.stringify(samples, null, 2)}\n`)
  })

/** Step kinds the report's study never plans (no scratch base, no staged base, no CLIP training). */
const notInThisStudy = <K extends StepKind>(context: StepContext<K>) =>
  Effect.fail(new StepFailed({ step: context.step.id, reason: `the report study's stand-ins do not implement ${context.step.kind}` }))

type Services = Datasets | ImageIO | ClipScorers | ReportRenderer | FileSystem.FileSystem

/** The services the production steps use, with their real implementations. */
export const reportStudyServices = Layer.mergeAll(
  NodeFileSystem.layer,
  ImageIOLive,
  DatasetsLive.pipe(Layer.provide(ImageIOLive)),
  OnnxClipScorersLive,
  ReportRendererLive.pipe(Layer.provide(ImageIOLive))
)

/** Production prepare-data, evaluate and report; stand-ins for the engine's steps. */
export const standInStudySteps = Layer.effect(
  StepImplementations,
  Effect.gen(function*() {
    const services = yield* Effect.context<Services>()
    const bind = <K extends StepKind>(handler: (context: StepContext<K>) => Effect.Effect<void, StepError, Services>): StepHandler<K, never> => (context) =>
      Effect.provide(handler(context), services)
    const handlers: StepHandlers<never> = {
      "init-model": notInThisStudy,
      "merge-model": notInThisStudy,
      "train-clip": notInThisStudy,
      "prepare-data": bind(prepareData),
      "encode-latents": bind(standInEncodeLatents),
      "encode-text": bind(standInEncodeText),
      train: bind(standInTrain),
      generate: bind(standInGenerate),
      evaluate: bind(evaluate),
      report: bind(report)
    }
    return { handlers, backend: () => Effect.succeed("none (test stand-ins)") }
  })
).pipe(Layer.provide(reportStudyServices))

export const standInHandlers = Effect.map(StepImplementations, (s) => s.handlers).pipe(Effect.provide(standInStudySteps))
