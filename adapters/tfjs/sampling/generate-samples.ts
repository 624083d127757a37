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
import type { Control } from "./guidance.ts"

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
  /** A conditioned experiment's scenes (generate.conditions): sampled in place of the prompts, each with its ControlNet image. */
  readonly scenes?: ConditionScenes
}

/** The scenes a ControlNet samples: each with its caption (the prompt) and conditioning image. */
export interface ConditionScenes {
  readonly controlnet: Omit<Control, "image">
  readonly scenes: ReadonlyArray<ConditionScene>
}

export interface ConditionScene {
  /** The prepared sample's id and source file (what the sample records). */
  readonly id: string
  readonly source: string
  readonly caption: string
  /** HWC in [0, 1]. */
  readonly image: Float32Array
  readonly height: number
  readonly width: number
  readonly channels: number
}

/** What one prompt of a run samples: declared, or a scene's caption with its conditioning image. */
interface PromptJob {
  readonly text: string
  readonly declared: string
  readonly split: "seen" | "unseen"
  readonly negative: string | undefined
  readonly scene?: { readonly index: number; readonly scene: ConditionScene }
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
    const convert = request.convertPrompt ?? ((text: string) => text)
    const scenes = request.scenes?.scenes
    const negative = scenes === undefined || generate.negativePrompt === undefined
      ? undefined
      : yield* substituteToken(convert(generate.negativePrompt), "negativePrompt", request.token)
    const jobs: ReadonlyArray<PromptJob> = scenes !== undefined
      // A scene's caption was prepared with the token already in place.
      ? scenes.map((scene, index) => ({ text: convert(scene.caption), declared: scene.caption, split: "seen", negative, scene: { index, scene } }))
      : yield* Effect.forEach(promptsOf(generate), (p, i) =>
        Effect.gen(function*() {
          const declaredNegative = negativePromptOf(generate, p)
          const field = p.negativePrompt !== undefined ? `prompts[${i}].negativePrompt` : "negativePrompt"
          return {
            text: yield* substituteToken(convert(p.text), `prompts[${i}]`, request.token),
            declared: p.text,
            split: p.split,
            negative: declaredNegative === undefined ? undefined : yield* substituteToken(convert(declaredNegative), field, request.token)
          }
        }))
    const mismatched = jobs.find((j) => j.scene !== undefined && (j.scene.scene.height !== side || j.scene.scene.width !== side))
    if (mismatched?.scene !== undefined) {
      const { scene } = mismatched.scene
      return yield* new GenerationError({
        field: "conditions",
        reason:
          `the scene ${scene.source} was prepared at ${scene.width}×${scene.height} pixels, but samples are ${side}×${side}; prepare the conditions at the generation's resolution`
      })
    }
    const replicates = Array.from({ length: generate.samplesPerPrompt }, (_, r) => r)
    const total = jobs.length * generate.seeds.length * replicates.length
    const samples: Array<GeneratedSample> = []

    yield* Effect.forEach(jobs, (job, promptIndex) =>
      Effect.acquireUseRelease(
        Effect.sync(() => ({
          prompt: promptConditioning(models, job.text, guided, size, job.negative) as Conditioning,
          image: job.scene === undefined ? undefined : tf.tensor4d(job.scene.scene.image, [1, side, side, job.scene.scene.channels])
        })),
        ({ image, prompt: conditioning }) =>
          Effect.forEach(generate.seeds, (seed) =>
            Effect.forEach(replicates, (replicate) =>
              Effect.gen(function*() {
                const amplitude = yield* Effect.sync(() => {
                  const control = image === undefined || request.scenes === undefined ? {} : { control: { ...request.scenes.controlnet, image } }
                  const decoded = tf.tidy(() => {
                    const latents = sampleLatents({
                      models,
                      sampler,
                      conditioning,
                      guidanceScale: generate.guidanceScale,
                      size: latentSize,
                      seed,
                      replicate,
                      ...control
                    })
                    return decodeAmplitude(models.vae, latents)
                  })
                  // Read outside tidy: tidy would walk the returned typed array element by element.
                  const data = decoded.dataSync() as Float32Array
                  decoded.dispose()
                  return data
                })
                const stem = sampleStem(promptIndex, seed, replicate)
                yield* writeSampleImages(request.outDir, stem, amplitude, side)
                samples.push({
                  prompt: job.text,
                  declaredPrompt: job.declared,
                  ...(job.negative === undefined ? {} : { negativePrompt: job.negative }),
                  promptIndex,
                  split: job.split,
                  seed,
                  tiff: `${stem}.tif`,
                  png: `${stem}.png`,
                  ...(job.scene === undefined ? {} : { condition: { scene: job.scene.index, id: job.scene.scene.id, source: job.scene.scene.source } })
                })
                yield* request.progress(samples.length, total, "images")
              })), { discard: true }),
        ({ image, prompt }) =>
          Effect.sync(() => {
            disposeConditioning(prompt)
            image?.dispose()
          })
      ), { discard: true })

    yield* writeSamplesIndex(request.outDir, samples)
    return samples
  })
