import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { type Generation, negativePromptOf, promptsOf } from "../../../framework/declaration/generation.ts"
import type { GeneratedSample, ProgressSink } from "../../../framework/services/engine.ts"
import type { ImageIO, ImageWriteError } from "../../../framework/services/image-io.ts"
import { sampleStem, writeSampleImages, writeSamplesIndex } from "../../images/sample-files.ts"
import type { ModelConfigError } from "../model-config.ts"
import type { ImageSizeConditioning } from "../prompt-encoding.ts"
import { type Conditioning, disposeConditioning, promptConditioning, usesGuidance } from "./conditioning.ts"
import type { DiffusionModels } from "./diffusion-models.ts"
import { decodeAmplitude, sampleLatents, vaeScaleFactor } from "./sample-image.ts"
import { makeSampler } from "./sampler.ts"

/** A generation the models cannot run as declared; `field` is the declaration field at fault. */
export class GenerationError extends Schema.TaggedError<GenerationError>()("GenerationError", {
  field: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `generate.${this.field}: ${this.reason}`
  }
}

export interface GenerateSamplesRequest {
  readonly models: DiffusionModels
  readonly generate: Generation
  /** Replaces `{token}` in the prompts: the experiment's learned token (e.g. `<SAR>`), already in the tokenizers. */
  readonly token?: string
  /**
   * Rewrites a declared prompt before `{token}` is replaced: a multi-vector token written literally
   * becomes all its spellings, as diffusers' `maybe_convert_prompt` does.
   */
  readonly convertPrompt?: (text: string) => string
  /** Image side in pixels when the generation declares none. */
  readonly resolution: number
  /** Receives `images/` and `samples.json`. */
  readonly outDir: string
  readonly progress: ProgressSink
  /**
   * SDXL micro-conditioning; each part defaults as in StableDiffusionXLPipeline: original and target size
   * the image size, crop corner (0, 0). Ignored by SD 1.x / 2.x.
   */
  readonly sizeConditioning?: Partial<ImageSizeConditioning>
}

const substituteToken = (text: string, field: string, token: string | undefined): Effect.Effect<string, GenerationError> =>
  !text.includes("{token}")
    ? Effect.succeed(text)
    : token === undefined
    ? Effect.fail(new GenerationError({ field, reason: `uses {token} but no learned token was given` }))
    : Effect.succeed(text.replaceAll("{token}", token))

/**
 * Samples every declared prompt × seed × replicate (`samplesPerPrompt`) and writes, per sample, a float32
 * TIFF of the normalised amplitude in [0, 1] and an 8-bit PNG preview under `outDir/images/`, then
 * `outDir/samples.json` (the GeneratedSample records, in generation order) last. A sample's noise
 * depends on its seed and replicate only, so the same seed gives the same starting noise for every
 * prompt and the same files on every run. Prompts are encoded once; the guided pass uses the prompt's
 * negative prompt, or diffusers' default without one (the empty prompt, zeros for SDXL pipelines that force them).
 */
export const generateSamples = (
  request: GenerateSamplesRequest
): Effect.Effect<ReadonlyArray<GeneratedSample>, GenerationError | ModelConfigError | ImageWriteError, ImageIO> =>
  Effect.gen(function*() {
    const { models, generate } = request
    const side = generate.resolution ?? request.resolution
    const factor = vaeScaleFactor(models.vae)
    if (!Number.isInteger(side) || side % factor !== 0) {
      return yield* new GenerationError({
        field: "resolution",
        reason: `${side} pixels is not a multiple of the VAE's scale factor ${factor}`
      })
    }
    const latentSize = [side / factor, side / factor] as const
    const sampler = yield* makeSampler(generate, models.scheduler.config, models.scheduler.file)
    const guided = usesGuidance(generate.guidanceScale)
    const size: ImageSizeConditioning = {
      originalSize: request.sizeConditioning?.originalSize ?? [side, side],
      cropTopLeft: request.sizeConditioning?.cropTopLeft ?? [0, 0],
      targetSize: request.sizeConditioning?.targetSize ?? [side, side]
    }
    const prompts = promptsOf(generate)
    const convert = request.convertPrompt ?? ((text: string) => text)
    const texts = yield* Effect.forEach(prompts, (p, i) => substituteToken(convert(p.text), `prompts[${i}]`, request.token))
    const negatives = yield* Effect.forEach(prompts, (p, i) => {
      const negative = negativePromptOf(generate, p)
      const field = p.negativePrompt !== undefined ? `prompts[${i}].negativePrompt` : "negativePrompt"
      return negative === undefined ? Effect.succeed(undefined) : substituteToken(convert(negative), field, request.token)
    })
    const replicates = Array.from({ length: generate.samplesPerPrompt }, (_, r) => r)
    const total = prompts.length * generate.seeds.length * replicates.length
    const samples: Array<GeneratedSample> = []

    yield* Effect.forEach(prompts, (prompt, promptIndex) =>
      Effect.acquireUseRelease(
        Effect.sync((): Conditioning => promptConditioning(models, texts[promptIndex]!, guided, size, negatives[promptIndex])),
        (conditioning) =>
          Effect.forEach(generate.seeds, (seed) =>
            Effect.forEach(replicates, (replicate) =>
              Effect.gen(function*() {
                const amplitude = yield* Effect.sync(() => {
                  const image = tf.tidy(() => {
                    const latents = sampleLatents({ models, sampler, conditioning, guidanceScale: generate.guidanceScale, size: latentSize, seed, replicate })
                    return decodeAmplitude(models.vae, latents)
                  })
                  // Read outside tidy: tidy would walk the returned typed array element by element.
                  const data = image.dataSync() as Float32Array
                  image.dispose()
                  return data
                })
                const stem = sampleStem(promptIndex, seed, replicate)
                yield* writeSampleImages(request.outDir, stem, amplitude, side)
                const negativePrompt = negatives[promptIndex]
                samples.push({
                  prompt: texts[promptIndex]!,
                  declaredPrompt: prompt.text,
                  ...(negativePrompt === undefined ? {} : { negativePrompt }),
                  promptIndex,
                  split: prompt.split,
                  seed,
                  tiff: `${stem}.tif`,
                  png: `${stem}.png`
                })
                yield* request.progress(samples.length, total, "images")
              })), { discard: true }),
        (conditioning) => Effect.sync(() => disposeConditioning(conditioning))
      ), { discard: true })

    yield* writeSamplesIndex(request.outDir, samples)
    return samples
  })
