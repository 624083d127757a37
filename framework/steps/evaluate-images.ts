import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import { join } from "node:path"
import type { Evaluation } from "../declaration/evaluation.ts"
import type { DistanceDomain } from "../metrics/amplitude-distances.ts"
import { cmmd, type Embeddings, frechetDistance, kernelDistance } from "../metrics/embedding-distances.ts"
import { type GeneratedImage, type MeasuredImage, measureEvaluation, measureImage } from "../metrics/evaluation-evidence.ts"
import { evaluationIntervals } from "../metrics/evaluation-intervals.ts"
import { evaluationMetrics } from "../metrics/metric-catalog.ts"
import type { SampleImage } from "../metrics/metric-input.ts"
import { chanceLevels, distinctPrompts, measurePromptFollowing, type PromptFollowing } from "../metrics/prompt-following.ts"
import { distributionOf } from "../metrics/set-comparison.ts"
import { ImageIO, type Raster } from "../services/image-io.ts"
import { type ClipScorer, ClipScorers } from "../services/scorer.ts"
import { encodeEvidence, evaluationFile, type EvaluationResult, evidenceFile, type PromptFollowingRecord, type PromptScore } from "./evaluation-result.ts"
import { writeJsonAtomic } from "./json-files.ts"
import { promptReadings } from "./prompt-readings.ts"

/**
 * The evaluate step's work on any images (DESIGN §6–7, issue 4's metrics, issue 20's intervals):
 * the step feeds it an experiment's samples and prepared reference set, `sardine evaluate` any two
 * folders, so both write the same evaluation.json and evidence.json from the same code.
 */

const followingRecord = (following: PromptFollowing): PromptFollowingRecord =>
  following._tag === "Absent" ? { absent: following.reason } : { ...following.setting, chance: chanceLevels(following.setting) }

/** Points of the quantile function the report's CDF chart draws. */
const quantilePoints = 101

/** One generated image: how to read it (normalised amplitude in [0, 1]) and what made it. */
export interface GeneratedSource<E, R> {
  readonly read: Effect.Effect<Raster, E, R>
  /** Names the image in metric errors. */
  readonly name: string
  readonly promptIndex: number
  /** The prompt the generator was given; absent when unknown (then no CLIP alignment). */
  readonly prompt?: string
  /** As shown in the report: the declared prompt, or a file name when there is no prompt. */
  readonly declaredPrompt: string
  readonly split: "seen" | "unseen"
  readonly seed: number
  /** An 8-bit preview to copy; absent: one is written from the image. */
  readonly png?: string
}

/** One reference image: how to read it (one band of normalised amplitude in [0, 1]) and its caption. */
export interface ReferenceSource<E, R> {
  readonly read: Effect.Effect<SampleImage, E, R>
  readonly caption: string
}

export interface EvaluateImagesRequest<EG, ER, R> {
  readonly experiments: ReadonlyArray<string>
  readonly generated: ReadonlyArray<GeneratedSource<EG, R>>
  readonly reference: ReadonlyArray<ReferenceSource<ER, R>>
  /** Evaluations compare only against the same reference key. */
  readonly referenceKey: string
  readonly options: Omit<Evaluation, "reference">
  /** The CLIP folder, as declared, to a path. */
  readonly resolveClip: (declared: string) => string
  readonly lineage: EvaluationResult["lineage"]
  readonly workDir: string
  readonly progress: (done: number, total: number, unit: string) => Effect.Effect<void>
  readonly log: (line: string) => Effect.Effect<void>
}

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

/** Counts which sample of its prompt and seed each generated image is (samplesPerPrompt), in generation order. */
const sampleCounter = () => {
  const seen = new Map<string, number>()
  return (s: { readonly promptIndex: number; readonly seed: number }) => {
    const key = `${s.promptIndex}/${s.seed}`
    const index = seen.get(key) ?? 0
    seen.set(key, index + 1)
    return index
  }
}

const rowsOf = (embeddings: Embeddings, i: number) => embeddings.data.slice(i * embeddings.dim, (i + 1) * embeddings.dim)

/** Measures the images, writes previews/, evidence.json and evaluation.json into `workDir`; returns the result. */
export const evaluateImages = <EG, ER, R>(request: EvaluateImagesRequest<EG, ER, R>) =>
  Effect.gen(function*() {
    const io = yield* ImageIO
    const { options } = request
    const samples = request.generated
    const texture = { levels: options.texture.levels, distances: options.texture.distances, anglesDegrees: options.texture.angles }
    const domain: DistanceDomain = options.amplitude.domain === "amplitude"
      ? { kind: "amplitude" }
      : { kind: "db", floorDb: options.amplitude.floorDb }
    const total = samples.length + request.reference.length
    let done = 0
    const tick = Effect.suspend(() => request.progress(++done, total, "images"))

    const generated = yield* Effect.forEach(samples, (sample) =>
      Effect.gen(function*() {
        const raster = yield* sample.read
        const measured = yield* measureImage({ name: sample.name, width: raster.width, height: raster.height, data: greyOf(raster) }, texture)
        yield* tick
        return { sample, raster, measured }
      }))
    const generatedRasters = generated.map((g) => g.raster)

    const reference = yield* Effect.forEach(request.reference, (sample) =>
      Effect.gen(function*() {
        const image = yield* sample.read
        const raster: Raster = { width: image.width, height: image.height, channels: 1, data: image.data }
        const measured: MeasuredImage = yield* measureImage(image, texture)
        yield* tick
        return { sample, raster, measured }
      }))
    const referenceRasters = reference.map((r) => r.raster)

    // Previews for the report's image grid, next to the numbers.
    const fs = yield* FileSystem.FileSystem
    yield* fs.makeDirectory(join(request.workDir, "previews"), { recursive: true })
    const generatedPreviews = yield* Effect.forEach(generated, ({ raster, sample }, i) =>
      Effect.gen(function*() {
        const file = `previews/generated-${String(i).padStart(4, "0")}.png`
        const png = sample.png
        if (png === undefined) {
          yield* io.writePng8(join(request.workDir, file), { ...raster, channels: 1, data: greyOf(raster).map((v) => v * 255) })
        } else yield* fs.copyFile(png, join(request.workDir, file))
        return { file, prompt: sample.declaredPrompt, split: sample.split, seed: sample.seed }
      }))

    // CLIP alignment needs every image's prompt; the embedding distances need none.
    const prompts = samples.every((s) => s.prompt !== undefined) ? samples.map((s) => s.prompt!) : undefined
    const alignment = options.alignment === undefined
      ? undefined
      : yield* Effect.scoped(Effect.gen(function*() {
        const declared = options.alignment!
        const scorers = yield* ClipScorers
        const scorer = yield* scorers.load(request.resolveClip(declared.clip))
        const images = yield* scorer.embedImages(generatedRasters)
        // Each distinct prompt (as the scorer reads it) embedded once; every image scored against each
        // (measurePromptFollowing checks that every own index is one of the prompts).
        const distinct = prompts === undefined ? undefined : distinctPrompts(prompts.map(scorerPrompt))
        const scoreAll = (by: ClipScorer, embedded: Embeddings, own: NonNullable<typeof distinct>) =>
          Effect.flatMap(by.embedTexts(own.prompts), (texts) => measurePromptFollowing(embedded, texts, own.own, declared.retrievalK))
        const scored = distinct === undefined ? undefined : yield* Effect.gen(function*() {
          const absolute = yield* scoreAll(scorer, images, distinct)
          // The judge, when declared, scores every image against every prompt again; its matrix gives the gap and retrieval.
          const judged = declared.promptFollowing === undefined
            ? absolute
            : yield* Effect.flatMap(scorers.load(request.resolveClip(declared.promptFollowing.clip)), (judge) =>
              Effect.flatMap(judge.embedImages(generatedRasters), (embedded) => scoreAll(judge, embedded, distinct)))
          const { following } = judged
          if (following._tag === "Absent") {
            yield* request.log(`prompt following: not scored, ${following.reason}`)
          }
          const retrieval = { scores: judged.scores, prompts: distinct.prompts.length, own: distinct.own }
          return {
            following,
            retrieval,
            scores: distinct.own.map((p, i) =>
              absolute.scores[i * distinct.prompts.length + p]!
            )
          }
        })
        const scores = scored?.scores
        const following = scored?.following
        const notes: Array<string> = prompts === undefined ? ["CLIP alignment: the images' prompts are not known"] : []
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
        const retrieval = following?._tag === "Measured" ? scored?.retrieval : undefined
        const judge = declared.promptFollowing?.clip
        return { clip: declared.clip, ...(judge === undefined ? {} : { judge }), images, scores, following, retrieval, referenceEmbeddings, distances, notes }
      }))

    const sampleIndex = sampleCounter()
    const generatedImages = generated.map(({ measured, sample }, i): GeneratedImage => ({
      promptIndex: sample.promptIndex,
      prompt: sample.declaredPrompt,
      split: sample.split,
      seed: sample.seed,
      sample: sampleIndex(sample),
      measured,
      // One score per image: clipAlignment checked the counts.
      ...(alignment?.scores === undefined ? {} : { clip: alignment.scores[i]! }),
      ...(alignment?.following?._tag === "Measured" ? { following: alignment.following.images[i]! } : {}),
      ...(alignment?.referenceEmbeddings === undefined ? {} : { embedding: rowsOf(alignment.images, i) })
    }))
    const measured = yield* measureEvaluation({
      generated: generatedImages,
      reference: reference.map((r) => r.measured),
      ...(alignment?.referenceEmbeddings === undefined
        ? {}
        : {
          referenceEmbeddings: { count: alignment.referenceEmbeddings.count, dim: alignment.referenceEmbeddings.dim, data: alignment.referenceEmbeddings.data }
        }),
      referenceKey: request.referenceKey,
      ...(alignment?.following?._tag === "Measured" ? { retrieval: alignment.following.setting } : {}),
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
    yield* request.log(`intervals: ${uncertainty.resamples} bootstrap resamples of the noise draws`)
    const intervals = yield* evaluationIntervals(measured.evidence, uncertainty, probabilities, exact, (n, of) => request.progress(n, of, "resamples"))
    const { estimates } = intervals
    const valueOf = (id: string) => estimates[id]?.value

    const promptScores: ReadonlyArray<PromptScore> = alignment?.scores === undefined ?
      [] :
      [...new Map(samples.map((s) => [s.promptIndex, s]))].map(([promptIndex, s]) => ({
        prompt: s.declaredPrompt,
        promptIndex,
        split: s.split,
        score: valueOf(`alignment.prompt.${promptIndex}`) ?? NaN,
        samples: samples.filter((x) => x.promptIndex === promptIndex).length
      }))
    // Each prompt's reading for the report's sample grid, and previews of the reference scenes it names.
    const { previewed, readings } = promptReadings({
      generated: generated.map(({ measured, sample }) => ({ ...sample, statistics: measured.statistics })),
      reference: reference.map(({ measured, sample }) => ({ caption: sample.caption, statistics: measured.statistics })),
      ...(alignment?.retrieval === undefined ? {} : { retrieval: alignment.retrieval })
    })
    const referencePreviewFiles = yield* Effect.forEach(previewed, (r) =>
      Effect.gen(function*() {
        const { raster: image, sample } = reference[r]!
        const file = `previews/reference-${String(r).padStart(4, "0")}.png`
        yield* io.writePng8(join(request.workDir, file), { ...image, data: image.data.map((v) => v * 255) })
        return { file, caption: sample.caption }
      }))
    const result: EvaluationResult = {
      experiments: request.experiments,
      estimates,
      uncertainty: { level: uncertainty.level, resamples: uncertainty.resamples, seed: uncertainty.seed, draws: intervals.draws },
      generated: { images: samples.length, statistics: measured.generatedStatistics },
      reference: { images: request.reference.length, statistics: measured.referenceStatistics },
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
          ...(alignment.judge === undefined ? {} : { judge: alignment.judge }),
          ...(valueOf(evaluationMetrics.clipSeen.id) === undefined ? {} : { seen: valueOf(evaluationMetrics.clipSeen.id)! }),
          ...(valueOf(evaluationMetrics.clipUnseen.id) === undefined ? {} : { unseen: valueOf(evaluationMetrics.clipUnseen.id)! }),
          prompts: promptScores,
          ...(alignment.following === undefined ? {} : { promptFollowing: followingRecord(alignment.following) }),
          ...alignment.distances,
          notes: alignment.notes
        }
      }),
      promptReadings: readings,
      previews: { generated: generatedPreviews, reference: referencePreviewFiles },
      lineage: request.lineage
    }
    yield* writeJsonAtomic(join(request.workDir, evidenceFile), encodeEvidence(measured.evidence))
    yield* writeJsonAtomic(join(request.workDir, evaluationFile), result)
    return result
  })
