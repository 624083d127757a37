import { Effect, Option } from "effect"
import { copyFile, mkdir } from "node:fs/promises"
import { join } from "node:path"
import type { DistanceDomain } from "../metrics/amplitude-distances.ts"
import { clipAlignment, cmmd, type Embeddings, frechetDistance, kernelDistance } from "../metrics/embedding-distances.ts"
import { type GeneratedImage, type MeasuredImage, measureEvaluation, measureImage } from "../metrics/evaluation-evidence.ts"
import { evaluationIntervals } from "../metrics/evaluation-intervals.ts"
import { EVALUATION_METRICS, evaluationMetrics, intervalKeys } from "../metrics/metric-catalog.ts"
import type { SampleImage } from "../metrics/metric-input.ts"
import { distributionOf } from "../metrics/set-comparison.ts"
import { readManifestIn } from "../runner/cache.ts"
import type { StepContext } from "../runner/step-handler.ts"
import { type GeneratedSample, samplesIndexFile } from "../services/engine.ts"
import { ImageIO, type Raster } from "../services/image-io.ts"
import { ClipScorers } from "../services/scorer.ts"
import { encodeEvidence, evaluationFile, type EvaluationResult, evidenceFile, type PromptScore } from "./evaluation-result.ts"
import { readJson, writeJsonAtomic } from "./json-files.ts"
import { amplitudeOfPrepared, pairedEvaluation } from "./paired-evaluation.ts"
import { readPreparedIndex, readPreparedPixels } from "./prepared-dataset.ts"

/** Reference images shown in the report's grid. */
const referencePreviews = 8

/** Points of the quantile function the report's CDF chart draws. */
const quantilePoints = 101

const greyOf = (raster: Raster): Float32Array => {
  if (raster.channels === 1) return raster.data
  const out = new Float32Array(raster.width * raster.height)
  for (let p = 0; p < out.length; p++) {
    let sum = 0
    for (let c = 0; c < raster.channels; c++) sum += raster.data[p * raster.channels + c]!
    out[p] = sum / raster.channels
  }
  return out
}

/** CLIP prompts: the learned token means nothing to the scorer, so `{token}` and `<…>` read as "SAR". */
const scorerPrompt = (prompt: string) => prompt.replace(/\{token\}|<[^<>\s]+>/g, "SAR").replace(/\s+/g, " ").trim()

/** Which sample of its prompt and seed each generated image is (samplesPerPrompt), in generation order. */
const sampleIndices = (samples: ReadonlyArray<GeneratedSample>): ReadonlyArray<number> => {
  const seen = new Map<string, number>()
  return samples.map((s) => {
    const key = `${s.promptIndex}/${s.seed}`
    const index = seen.get(key) ?? 0
    seen.set(key, index + 1)
    return index
  })
}

const rowsOf = (embeddings: Embeddings, i: number) => embeddings.data.slice(i * embeddings.dim, (i + 1) * embeddings.dim)

/**
 * Judges an experiment's samples against the real reference set (DESIGN §6–7, issue 4's metrics),
 * with a confidence interval for every number (issue 20), and keeps the evidence comparisons need.
 */
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
    const total = samples.length + reference.samples.length
    let done = 0
    const tick = Effect.suspend(() => context.progress(++done, total, "images"))

    const generatedRasters: Array<Raster> = []
    const generatedImages: Array<SampleImage> = []
    const generatedMeasured = yield* Effect.forEach(samples, (sample) =>
      Effect.gen(function*() {
        const file = join(samplesDir, sample.tiff)
        const raster = yield* io.read(file)
        generatedRasters.push(raster)
        const image = { name: file, width: raster.width, height: raster.height, data: greyOf(raster) }
        generatedImages.push(image)
        const measured = yield* measureImage(image, texture)
        yield* tick
        return measured
      }))

    const referenceRasters: Array<Raster> = []
    const referenceMeasured: Array<MeasuredImage> = yield* Effect.forEach(reference.samples, (sample) =>
      Effect.gen(function*() {
        const image = amplitudeOfPrepared(reference, yield* readPreparedPixels(referenceDir, sample), sample.source)
        referenceRasters.push({ width: image.width, height: image.height, channels: 1, data: image.data })
        const measured = yield* measureImage(image, texture)
        yield* tick
        return measured
      }))

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
          const image = referenceRasters[i]!
          yield* io.writePng8(join(context.workDir, file), { ...image, data: image.data.map((v) => v * 255) })
          return { file, caption: sample.caption }
        })
    )

    const alignment = options.alignment === undefined
      ? undefined
      : yield* Effect.scoped(Effect.gen(function*() {
        const declared = options.alignment!
        const scorer = yield* (yield* ClipScorers).load(context.resolvePath(declared.clip))
        const images = yield* scorer.embedImages(generatedRasters)
        const texts = yield* scorer.embedTexts(samples.map((s) => scorerPrompt(s.prompt)))
        const scores = yield* clipAlignment(images, texts)
        const notes: Array<string> = []
        const distances: { fidClip?: number; kidClip?: number; cmmd?: number } = {}
        let referenceEmbeddings: Embeddings | undefined
        if (declared.embeddingDistances) {
          referenceEmbeddings = yield* scorer.embedImages(referenceRasters)
          const attempt = (name: keyof typeof distances, label: string, metric: Effect.Effect<number, { message: string }>) =>
            metric.pipe(
              Effect.tap((value) => Effect.sync(() => (distances[name] = value))),
              Effect.catchAll((error) => Effect.sync(() => void notes.push(`${label}: ${error.message}`)))
            )
          yield* attempt("fidClip", evaluationMetrics.fidClip.label, frechetDistance(images, referenceEmbeddings))
          yield* attempt("kidClip", evaluationMetrics.kidClip.label, kernelDistance(images, referenceEmbeddings))
          yield* attempt("cmmd", evaluationMetrics.cmmd.label, cmmd(images, referenceEmbeddings))
        }
        return { clip: declared.clip, images, scores, referenceEmbeddings, distances, notes }
      }))

    const referenceManifest = yield* readManifestIn(referenceDir)
    const indices = sampleIndices(samples)
    const generatedMeasures = samples.map((sample, i): GeneratedImage => ({
      promptIndex: sample.promptIndex,
      prompt: sample.declaredPrompt,
      split: sample.split,
      seed: sample.seed,
      sample: indices[i]!,
      measured: generatedMeasured[i]!,
      ...(alignment === undefined ? {} : { clip: alignment.scores[i] }),
      ...(alignment?.referenceEmbeddings === undefined ? {} : { embedding: rowsOf(alignment.images, i) })
    }))
    const measured = yield* measureEvaluation({
      generated: generatedMeasures,
      reference: referenceMeasured,
      ...(alignment?.referenceEmbeddings === undefined
        ? {}
        : {
          referenceEmbeddings: { count: alignment.referenceEmbeddings.count, dim: alignment.referenceEmbeddings.dim, data: alignment.referenceEmbeddings.data }
        }),
      referenceKey: referenceManifest.key,
      domain,
      bins: options.amplitude.bins,
      klPseudoCount: options.amplitude.klPseudoCount,
      texture
    })
    const { comparison } = measured

    // The exactly computed values; intervals computed on atoms are centred on them.
    const exact: Record<string, number | undefined> = {
      ...Object.fromEntries(Object.entries(comparison.amplitude).map(([k, v]) => [`amplitude.${k}`, v])),
      [evaluationMetrics.glcmCanberra.id]: comparison.glcm.canberra,
      [evaluationMetrics.fidClip.id]: alignment?.distances.fidClip,
      [evaluationMetrics.kidClip.id]: alignment?.distances.kidClip,
      [evaluationMetrics.cmmd.id]: alignment?.distances.cmmd
    }
    const { uncertainty } = options
    const probabilities = Array.from({ length: quantilePoints }, (_, i) => i / (quantilePoints - 1))
    yield* context.log(`intervals: ${uncertainty.resamples} bootstrap resamples of the noise draws`)
    const intervals = yield* evaluationIntervals(measured.evidence, uncertainty, probabilities, exact, (n, of) => context.progress(n, of, "resamples"))
    const { estimates } = intervals
    const valueOf = (id: string) => estimates[id]?.value

    const promptScores: ReadonlyArray<PromptScore> = alignment === undefined ?
      [] :
      [...new Map(samples.map((s) => [s.promptIndex, s]))].map(([promptIndex, s]) => ({
        prompt: s.declaredPrompt,
        promptIndex,
        split: s.split,
        score: valueOf(`alignment.prompt.${promptIndex}`) ?? NaN,
        samples: samples.filter((x) => x.promptIndex === promptIndex).length
      }))
    // A conditioned experiment's samples, each against the true image of its scene.
    const conditions = context.inputs("conditions")
    const paired = conditions.length === 1
      ? yield* pairedEvaluation(samples, generatedImages, conditions[0]!.dir, {
        domain,
        bins: options.amplitude.bins,
        klPseudoCount: options.amplitude.klPseudoCount
      })
      : undefined
    const generateManifest = yield* readManifestIn(samplesDir)
    const train = Option.fromNullable(generateManifest.inputs.find((i) => i.role === "model")?.key)
    const result: EvaluationResult = {
      experiments: context.step.experiments,
      estimates,
      uncertainty: { level: uncertainty.level, resamples: uncertainty.resamples, seed: uncertainty.seed, draws: intervals.draws },
      generated: { images: samples.length, statistics: measured.generatedStatistics },
      reference: { images: reference.samples.length, statistics: measured.referenceStatistics },
      amplitude: {
        domain: options.amplitude.domain,
        bins: options.amplitude.bins,
        range: domain.kind === "amplitude" ? [0, 1] : [domain.floorDb, 0],
        klPseudoCount: options.amplitude.klPseudoCount,
        distances: comparison.amplitude,
        generatedDistribution: { ...distributionOf(measured.generated, domain, options.amplitude.bins, quantilePoints), band: intervals.band },
        referenceDistribution: distributionOf(measured.real, domain, options.amplitude.bins, quantilePoints)
      },
      texture: {
        levels: texture.levels,
        distances: texture.distances,
        angles: texture.anglesDegrees,
        canberra: comparison.glcm.canberra,
        generated: comparison.glcm.a,
        reference: comparison.glcm.b
      },
      ...(alignment === undefined ? {} : {
        alignment: {
          clip: alignment.clip,
          ...(valueOf(evaluationMetrics.clipSeen.id) === undefined ? {} : { seen: valueOf(evaluationMetrics.clipSeen.id)! }),
          ...(valueOf(evaluationMetrics.clipUnseen.id) === undefined ? {} : { unseen: valueOf(evaluationMetrics.clipUnseen.id)! }),
          prompts: promptScores,
          ...alignment.distances,
          notes: alignment.notes
        }
      }),
      ...(paired === undefined ? {} : { paired }),
      previews: { generated: generatedPreviews, reference: referencePreviewFiles },
      lineage: {
        generate: generateManifest.key,
        reference: referenceManifest.key,
        ...Option.match(train, { onNone: () => ({}), onSome: (key) => ({ train: key }) })
      }
    }
    yield* writeJsonAtomic(join(context.workDir, evidenceFile), encodeEvidence(measured.evidence))
    yield* writeJsonAtomic(join(context.workDir, evaluationFile), result)

    // Each metric and its interval's bounds (MLflow keys from the metric catalog).
    const metrics: Record<string, number> = {}
    for (const { id } of EVALUATION_METRICS) {
      const estimate = estimates[id]
      if (estimate === undefined || !Number.isFinite(estimate.value)) continue
      const keys = intervalKeys(id)
      metrics[id] = estimate.value
      if (Number.isFinite(estimate.low)) metrics[keys.low] = estimate.low
      if (Number.isFinite(estimate.high)) metrics[keys.high] = estimate.high
    }
    yield* context.tracking.metrics(0, metrics)
    yield* context.tracking.artifact(join(context.workDir, evaluationFile), "evaluation")
  })
