import { Effect, Option } from "effect"
import { copyFile, mkdir } from "node:fs/promises"
import { join } from "node:path"
import type { AmplitudeStatistics } from "../metrics/amplitude-statistics.ts"
import { amplitudeStatistics } from "../metrics/amplitude-statistics.ts"
import { cmmd, frechetDistance, kernelDistance, clipAlignment, type Embeddings } from "../metrics/embedding-distances.ts"
import type { SampleImage } from "../metrics/metric-input.ts"
import { compareSets, distributionOf, summariseSet, type SetComparisonSettings } from "../metrics/set-comparison.ts"
import type { DistanceDomain } from "../metrics/amplitude-distances.ts"
import { readManifestIn } from "../runner/cache.ts"
import type { StepContext } from "../runner/step-handler.ts"
import { samplesIndexFile, type GeneratedSample } from "../services/engine.ts"
import { ImageIO, type Raster } from "../services/image-io.ts"
import { ClipScorers } from "../services/scorer.ts"
import { evaluationFile, type EvaluationResult, type MeanStatistics, type PromptScore } from "./evaluation-result.ts"
import { readPreparedIndex, readPreparedPixels, type PreparedIndex } from "./prepared-dataset.ts"
import { readJson, writeJsonAtomic } from "./json-files.ts"

/** Reference images shown in the report's grid. */
const referencePreviews = 8

/** Prepared pixels are HWC in [-1, 1]; metrics take one band of amplitude: the channel mean, back in [0, 1]. */
const amplitudeOfPrepared = (index: PreparedIndex, pixels: Float32Array, name: string): SampleImage => {
  const { channels, width, height } = index
  const data = new Float32Array(width * height)
  for (let p = 0; p < data.length; p++) {
    let sum = 0
    for (let c = 0; c < channels; c++) sum += pixels[p * channels + c]
    data[p] = (sum / channels + 1) / 2
  }
  return { name, width, height, data }
}

const greyOf = (raster: Raster): Float32Array => {
  if (raster.channels === 1) return raster.data
  const out = new Float32Array(raster.width * raster.height)
  for (let p = 0; p < out.length; p++) {
    let sum = 0
    for (let c = 0; c < raster.channels; c++) sum += raster.data[p * raster.channels + c]
    out[p] = sum / raster.channels
  }
  return out
}

const meanStatistics = (all: ReadonlyArray<AmplitudeStatistics>): MeanStatistics => {
  const mean = (pick: (s: AmplitudeStatistics) => number) => {
    const finite = all.map(pick).filter(Number.isFinite)
    return finite.length === 0 ? Number.NaN : finite.reduce((a, b) => a + b, 0) / finite.length
  }
  return { mean: mean((s) => s.mean), std: mean((s) => s.std), cv: mean((s) => s.cv), enl: mean((s) => s.enl), gammaLooks: mean((s) => s.gammaLooks) }
}

/** CLIP prompts: the learned token means nothing to the scorer, so `{token}` and `<…>` read as "SAR". */
const scorerPrompt = (prompt: string) => prompt.replace(/\{token\}|<[^<>\s]+>/g, "SAR").replace(/\s+/g, " ").trim()

/** Judges an experiment's samples against the real reference set (DESIGN §6–7, issue 4's metrics). */
export const evaluate = (context: StepContext<"evaluate">) =>
  Effect.gen(function*() {
    const io = yield* ImageIO
    const { evaluate: options } = context.step.config
    const samplesDir = context.input("samples").dir
    const referenceDir = context.input("reference").dir
    const samples = yield* readJson<ReadonlyArray<GeneratedSample>>(join(samplesDir, samplesIndexFile))
    const reference = yield* readPreparedIndex(referenceDir)
    const texture = { levels: options.texture.levels, distances: options.texture.distances, anglesDegrees: options.texture.angles }
    const domain: DistanceDomain = options.amplitude.domain === "amplitude"
      ? { kind: "amplitude" }
      : { kind: "db", floorDb: options.amplitude.floorDb }
    const settings: SetComparisonSettings = { domain, bins: options.amplitude.bins, klPseudoCount: options.amplitude.klPseudoCount, texture }
    const total = samples.length + reference.samples.length
    let done = 0
    const tick = Effect.suspend(() => context.progress(++done, total, "images"))

    const generatedStats: Array<AmplitudeStatistics> = []
    const generatedImages: Array<Raster> = []
    const generated = yield* summariseSet(samples.length, (i) =>
      Effect.gen(function*() {
        const file = join(samplesDir, samples[i].tiff)
        const raster = yield* io.read(file)
        generatedImages.push(raster)
        const image: SampleImage = { name: file, width: raster.width, height: raster.height, data: greyOf(raster) }
        generatedStats.push(yield* amplitudeStatistics(image))
        yield* tick
        return image
      }), texture)

    const referenceStats: Array<AmplitudeStatistics> = []
    const referenceImages: Array<Raster> = []
    const real = yield* summariseSet(reference.samples.length, (i) =>
      Effect.gen(function*() {
        const sample = reference.samples[i]
        const image = amplitudeOfPrepared(reference, yield* readPreparedPixels(referenceDir, sample), sample.source)
        referenceImages.push({ width: image.width, height: image.height, channels: 1, data: image.data })
        referenceStats.push(yield* amplitudeStatistics(image))
        yield* tick
        return image
      }), texture)

    const comparison = yield* compareSets({ ...generated, name: "generated" }, { ...real, name: "reference" }, settings)

    // Previews for the report's image grid, next to the numbers.
    yield* Effect.promise(() => mkdir(join(context.workDir, "previews"), { recursive: true }))
    const generatedPreviews = yield* Effect.forEach(samples, (sample, i) =>
      Effect.promise(async () => {
        const file = `previews/generated-${String(i).padStart(4, "0")}.png`
        await copyFile(join(samplesDir, sample.png), join(context.workDir, file))
        return { file, prompt: sample.declaredPrompt, split: sample.split, seed: sample.seed }
      }))
    const referencePreviewFiles = yield* Effect.forEach(
      reference.samples.slice(0, referencePreviews),
      (sample, i) =>
        Effect.gen(function*() {
          const file = `previews/reference-${String(i).padStart(4, "0")}.png`
          const image = referenceImages[i]
          yield* io.writePng8(join(context.workDir, file), { ...image, data: image.data.map((v) => v * 255) })
          return { file, caption: sample.caption }
        })
    )

    const alignment = options.alignment === undefined
      ? undefined
      : yield* Effect.scoped(Effect.gen(function*() {
        const clip = context.resolvePath(options.alignment!.clip)
        const scorer = yield* (yield* ClipScorers).load(clip)
        const images = yield* scorer.embedImages(generatedImages)
        const texts = yield* scorer.embedTexts(samples.map((s) => scorerPrompt(s.prompt)))
        const scores = yield* clipAlignment(images, texts)
        const byPrompt = new Map<string, { split: "seen" | "unseen"; sum: number; n: number }>()
        samples.forEach((s, i) => {
          const entry = byPrompt.get(s.declaredPrompt) ?? { split: s.split, sum: 0, n: 0 }
          entry.sum += scores[i]
          entry.n += 1
          byPrompt.set(s.declaredPrompt, entry)
        })
        const prompts: Array<PromptScore> = [...byPrompt].map(([prompt, e]) => ({ prompt, split: e.split, score: e.sum / e.n, samples: e.n }))
        const splitMean = (split: "seen" | "unseen") => {
          const mine = samples.map((s, i) => [s.split, scores[i]] as const).filter(([s]) => s === split)
          return mine.length === 0 ? undefined : mine.reduce((a, [, v]) => a + v, 0) / mine.length
        }
        const notes: Array<string> = []
        const distances: { fid?: number; kid?: number; cmmd?: number } = {}
        if (options.alignment!.embeddingDistances) {
          const referenceEmbeddings: Embeddings = yield* scorer.embedImages(referenceImages)
          const attempt = (name: "fid" | "kid" | "cmmd", metric: Effect.Effect<number, { message: string }>) =>
            metric.pipe(
              Effect.tap((value) => Effect.sync(() => (distances[name] = value))),
              Effect.catchAll((error) => Effect.sync(() => void notes.push(`${name}: ${error.message}`)))
            )
          yield* attempt("fid", frechetDistance(images, referenceEmbeddings))
          yield* attempt("kid", kernelDistance(images, referenceEmbeddings))
          yield* attempt("cmmd", cmmd(images, referenceEmbeddings))
        }
        return { clip: options.alignment!.clip, seen: splitMean("seen"), unseen: splitMean("unseen"), prompts, ...distances, notes }
      }))

    const generateManifest = yield* readManifestIn(samplesDir)
    const referenceManifest = yield* readManifestIn(referenceDir)
    const train = Option.fromNullable(generateManifest.inputs.find((i) => i.role === "model")?.key)
    const result: EvaluationResult = {
      experiments: context.step.experiments,
      generated: { images: samples.length, statistics: meanStatistics(generatedStats) },
      reference: { images: reference.samples.length, statistics: meanStatistics(referenceStats) },
      amplitude: {
        domain: options.amplitude.domain,
        bins: options.amplitude.bins,
        range: domain.kind === "amplitude" ? [0, 1] : [domain.floorDb, 0],
        klPseudoCount: options.amplitude.klPseudoCount,
        distances: comparison.amplitude,
        generatedDistribution: distributionOf(generated, domain, options.amplitude.bins),
        referenceDistribution: distributionOf(real, domain, options.amplitude.bins)
      },
      texture: {
        levels: texture.levels,
        distances: texture.distances,
        angles: texture.anglesDegrees,
        canberra: comparison.glcm.canberra,
        generated: comparison.glcm.a,
        reference: comparison.glcm.b
      },
      ...(alignment === undefined ? {} : { alignment }),
      previews: { generated: generatedPreviews, reference: referencePreviewFiles },
      lineage: { generate: generateManifest.key, reference: referenceManifest.key, ...Option.match(train, { onNone: () => ({}), onSome: (key) => ({ train: key }) }) }
    }
    yield* writeJsonAtomic(join(context.workDir, evaluationFile), result)

    const metrics: Record<string, number> = {
      ...Object.fromEntries(Object.entries(comparison.amplitude).map(([k, v]) => [`amplitude.${k}`, v])),
      "texture.canberra": comparison.glcm.canberra,
      "generated.enl": result.generated.statistics.enl,
      "generated.cv": result.generated.statistics.cv
    }
    if (alignment?.seen !== undefined) metrics["alignment.seen"] = alignment.seen
    if (alignment?.unseen !== undefined) metrics["alignment.unseen"] = alignment.unseen
    for (const name of ["fid", "kid", "cmmd"] as const) if (alignment?.[name] !== undefined) metrics[`embedding.${name}`] = alignment[name]!
    yield* context.tracking.metrics(0, metrics)
    yield* context.tracking.artifact(join(context.workDir, evaluationFile), "evaluation")
  })
