import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import type { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { autoencoderKlEncode, type AutoencoderKlPlan } from "../autoencoder-kl.ts"
import { imageBatch } from "../encoding/image-batch.ts"
import type { LatentCache } from "../encoding/latent-cache.ts"
import type { TextCache } from "../encoding/text-cache.ts"
import type { Layers } from "../layers.ts"
import type { NoiseSchedule } from "../schedulers/noise-schedule.ts"
import {
  type PreparedDataError,
  type PreparedIndex,
  type PreparedSample,
  readPreparedCondition,
  readPreparedPixels
} from "../../../framework/steps/prepared-dataset.ts"
import type { DataFolderError } from "./index-files.ts"
import { drawsFor, DrawPurpose, normals, permutation } from "./training-draws.ts"

/**
 * What one micro-batch of a step trains on, drawn from (seed, step, micro-batch) alone: which
 * samples (epochs of seeded shuffles), which captions are dropped, the latents sampled from their
 * distributions, the noise (with its offset), the timesteps, the VAE's sampling draws.
 */

export interface BatchPosition {
  readonly seed: number
  readonly step: number
  readonly micro: number
  readonly microBatches: number
  readonly batchSize: number
}

/** Epoch shuffles already computed, by epoch (the caller keeps it for the run). */
export type EpochOrders = Map<number, Int32Array>

/** The samples of a micro-batch: epoch after epoch, each a seeded permutation of the data. */
export const sampleIndices = (at: BatchPosition, count: number, orders: EpochOrders): Array<number> =>
  Array.from({ length: at.batchSize }, (_, b) => {
    const global = (at.step * at.microBatches + at.micro) * at.batchSize + b
    const epoch = Math.floor(global / count)
    let order = orders.get(epoch)
    if (order === undefined) {
      order = permutation(drawsFor(at.seed, DrawPurpose.dataOrder, epoch), count)
      orders.delete(epoch - 2)
      orders.set(epoch, order)
    }
    return order[global % count]!
  })

/** The prepared samples a micro-batch trains on: `sampleIndices` over the training members when some are held out. */
export const trainingSampleIndices = (at: BatchPosition, sources: Pick<BatchSources, "prepared" | "members">, orders: EpochOrders): Array<number> => {
  const members = sources.members
  if (members === undefined) return sampleIndices(at, sources.prepared.samples.length, orders)
  // sampleIndices draws below members.length.
  return sampleIndices(at, members.length, orders).map((i) => members[i]!)
}

/** Captions with each replaced by "" with probability `dropout` (for classifier-free guidance). */
export const droppedCaptions = (at: BatchPosition, captions: ReadonlyArray<string>, dropout: number): Array<string> => {
  const random = drawsFor(at.seed, DrawPurpose.captionDropout, at.step, at.micro)
  return captions.map((c) => (random.chance(dropout) ? "" : c))
}

export interface MicroBatch {
  readonly samples: ReadonlyArray<PreparedSample>
  /** Captions after dropout, as written (the token not yet spelled out). */
  readonly captions: ReadonlyArray<string>
  /** Scaled clean latents and the noise for them (diffusion objective). */
  readonly diffusion?: {
    readonly latents: tf.Tensor4D
    readonly noise: tf.Tensor4D
    readonly timesteps: ReadonlyArray<number>
    /** SDXL's size conditioning per row: [h, w, crop top, crop left, h, w]. */
    readonly timeIds: ReadonlyArray<ReadonlyArray<number>>
    /** Conditioning read from the encode-text cache, when the encoders do not train. */
    readonly cachedText?: { readonly prompt: tf.Tensor3D; readonly pooled?: tf.Tensor2D }
    /** Each row's conditioning image, NHWC in [0, 1], when a ControlNet trains. */
    readonly condition?: tf.Tensor4D
  }
  /** Images and latent draws (VAE objective). */
  readonly reconstruction?: { readonly images: tf.Tensor4D; readonly draws: tf.Tensor4D }
}

export const disposeMicroBatch = (batch: MicroBatch): void => {
  const d = batch.diffusion
  const r = batch.reconstruction
  tf.dispose([
    ...(d === undefined
      ? []
      : [
        d.latents,
        d.noise,
        ...(d.condition === undefined ? [] : [d.condition]),
        ...(d.cachedText === undefined ? [] : [d.cachedText.prompt, ...(d.cachedText.pooled ? [d.cachedText.pooled] : [])])
      ]),
    ...(r === undefined ? [] : [r.images, r.draws])
  ])
}

export interface BatchSources {
  /** The prepare-data folder and its index (all samples share one size). */
  readonly dataDir: string
  readonly prepared: PreparedIndex
  readonly latents?: LatentCache
  readonly text?: TextCache
  readonly vae: { readonly plan: AutoencoderKlPlan; readonly layers: Layers }
  readonly schedule: NoiseSchedule
  readonly sdxl: boolean
  /** The samples that train (indices into `prepared.samples`) when some are held out; all when absent. */
  readonly members?: ReadonlyArray<number>
}

export interface BatchNeeds {
  readonly diffusion: boolean
  readonly reconstruction: boolean
  readonly captionDropout: number
  readonly noiseOffset: number
  /** The conditioning images (a ControlNet trains). */
  readonly conditions?: boolean
}

/** z = mean + exp(logvar / 2)·ε, then (z − shift)·scale: `latent_dist.sample()` as the UNet sees it. */
const sampleScaled = (mean: Float32Array, logvar: Float32Array, draws: Float32Array, offset: number, scale: number, shift: number): Float32Array => {
  const out = new Float32Array(mean.length)
  for (let i = 0; i < mean.length; i++) out[i] = (mean[i]! + Math.exp(0.5 * logvar[i]!) * draws[offset + i]! - shift) * scale
  return out
}

/** Noise N(0, I) plus `offset`·N(0, 1) per row and channel (the noise-offset trick, as diffusers adds it). */
const noiseWithOffset = (at: BatchPosition, shape: readonly [number, number, number, number], offset: number): Float32Array => {
  const [b, h, w, c] = shape
  const noise = normals(drawsFor(at.seed, DrawPurpose.noise, at.step, at.micro), b * h * w * c)
  if (offset === 0) return noise
  const shift = normals(drawsFor(at.seed, DrawPurpose.noiseOffset, at.step, at.micro), b * c)
  for (let i = 0; i < noise.length; i++) noise[i]! += offset * shift[Math.floor(i / (h * w * c)) * c + (i % c)]!
  return noise
}

/** The VAE's latent grid for an image: one halving per down block but the last. */
const latentShapeOf = (plan: AutoencoderKlPlan, height: number, width: number): [number, number, number] => {
  const factor = 2 ** (plan.config.block_out_channels.length - 1)
  return [Math.ceil(height / factor), Math.ceil(width / factor), plan.config.latent_channels]
}

type Tracker = <T extends tf.Tensor>(t: T) => T

/** The prepared images of `samples` as an NHWC batch for the VAE. */
export const preparedImages = (sources: BatchSources, samples: ReadonlyArray<PreparedSample>) =>
  Effect.map(
    Effect.forEach(samples, (s) =>
      readPreparedPixels(sources.dataDir, s).pipe(
        Effect.map((pixels) => ({ pixels, height: sources.prepared.height, width: sources.prepared.width, channels: sources.prepared.channels }))
      )),
    (images) => imageBatch(images, sources.vae.plan.config.in_channels)
  )

/** The latent distributions of the samples at `indices`: from the cache, or from the VAE as it is now (outside any gradient) on `images`. */
export const latentDistributions = (sources: BatchSources, indices: ReadonlyArray<number>, images: tf.Tensor4D | undefined) =>
  sources.latents !== undefined
    ? Effect.forEach(indices, (i) => sources.latents!.read(i))
    : Effect.sync(() => {
      const { mean, logvar } = autoencoderKlEncode(sources.vae.plan, sources.vae.layers, images!)
      const size = mean.size / indices.length
      const m = mean.dataSync() as Float32Array
      const v = logvar.dataSync() as Float32Array
      tf.dispose([mean, logvar])
      return indices.map((_, b) => ({ mean: m.subarray(b * size, (b + 1) * size), logvar: v.subarray(b * size, (b + 1) * size) }))
    })

/** The (h, w, c) latent grid of the prepared samples. */
export const latentShape = (sources: BatchSources): readonly [number, number, number] =>
  sources.latents?.index.shape ?? latentShapeOf(sources.vae.plan, sources.prepared.height, sources.prepared.width)

/** The VAE's scaling and shift factors the latents are scaled with. */
export const latentScaling = (sources: BatchSources) => ({
  scale: sources.latents?.index.scalingFactor ?? sources.vae.plan.config.scaling_factor,
  shift: sources.latents?.index.shiftFactor ?? sources.vae.plan.config.shift_factor ?? 0
})

/** The encode-text cache's conditioning of `captions`, when there is a cache. */
export const cachedConditioning = (sources: BatchSources, captions: ReadonlyArray<string>, track: Tracker) =>
  Effect.gen(function*() {
    if (sources.text === undefined) return undefined
    const rows = yield* Effect.forEach(captions, (caption) => sources.text!.read(caption))
    const [tokens, dim] = sources.text.index.promptShape
    const prompt = track(tf.tensor3d(concat(rows.map((r) => r.prompt)), [rows.length, tokens, dim]))
    const pooledShape = sources.text.index.pooledShape
    return pooledShape === null
      ? { prompt }
      : { prompt, pooled: track(tf.tensor2d(concat(rows.map((r) => r.pooled!)), [rows.length, pooledShape[0]!])) }
  })

/** SDXL's size conditioning of a prepared sample. */
export const sizeIds = (prepared: PreparedIndex) => [prepared.height, prepared.width, 0, 0, prepared.height, prepared.width]

/** Runs `build` with a tracker of the tensors it creates, released when it fails. */
export const releasedOnError = <A, E, R>(build: (track: Tracker) => Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const created: Array<tf.Tensor> = []
    const track: Tracker = (t) => {
      created.push(t)
      return t
    }
    return build(track).pipe(Effect.onError(() => Effect.sync(() => tf.dispose(created))))
  })

/** The rows' prepared conditioning images (NHWC, [0, 1]), one row per sample given (a sample may repeat). */
export const conditionImages = (sources: BatchSources, samples: ReadonlyArray<PreparedSample>, track: Tracker) =>
  Effect.gen(function*() {
    const { prepared } = sources
    const pixels = concat(yield* Effect.forEach(samples, (s) => readPreparedCondition(sources.dataDir, s)))
    const channels = pixels.length / (samples.length * prepared.height * prepared.width)
    return track(tf.tensor4d(pixels, [samples.length, prepared.height, prepared.width, channels]))
  })

export const loadMicroBatch = (
  at: BatchPosition,
  sources: BatchSources,
  needs: BatchNeeds,
  orders: EpochOrders
): Effect.Effect<MicroBatch, SafetensorsError | DataFolderError | PreparedDataError> =>
  releasedOnError((track) =>
    Effect.gen(function*() {
      const { prepared } = sources
      const indices = trainingSampleIndices(at, sources, orders)
      const samples = indices.map((i) => prepared.samples[i]!)
      const captions = droppedCaptions(at, samples.map((s) => s.caption), needs.captionDropout)
      const images = needs.reconstruction || (needs.diffusion && sources.latents === undefined)
        ? track(yield* preparedImages(sources, samples))
        : undefined
      let diffusion: MicroBatch["diffusion"]
      if (needs.diffusion) {
        const distributions = yield* latentDistributions(sources, indices, images)
        const [h, w, c] = latentShape(sources)
        const size = h * w * c
        const draws = normals(drawsFor(at.seed, DrawPurpose.latentSample, at.step, at.micro), size * samples.length)
        const { scale, shift } = latentScaling(sources)
        const latents = new Float32Array(size * samples.length)
        distributions.forEach((d, b) => latents.set(sampleScaled(d.mean, d.logvar, draws, b * size, scale, shift), b * size))
        const shape = [samples.length, h, w, c] as [number, number, number, number]
        const timestepDraws = drawsFor(at.seed, DrawPurpose.timesteps, at.step, at.micro)
        const timesteps = samples.map(() => timestepDraws.integer(0, sources.schedule.numTrainTimesteps - 1))
        const cachedText = yield* cachedConditioning(sources, captions, track)
        const condition = needs.conditions === true ? yield* conditionImages(sources, samples, track) : undefined
        diffusion = {
          latents: track(tf.tensor4d(latents, shape)),
          noise: track(tf.tensor4d(noiseWithOffset(at, shape, needs.noiseOffset), shape)),
          timesteps,
          timeIds: samples.map(() => sizeIds(prepared)),
          ...(cachedText === undefined ? {} : { cachedText }),
          ...(condition === undefined ? {} : { condition })
        }
      }
      let reconstruction: MicroBatch["reconstruction"]
      if (needs.reconstruction) {
        const [h, w, c] = latentShapeOf(sources.vae.plan, prepared.height, prepared.width)
        const shape = [samples.length, h, w, c] as [number, number, number, number]
        const draws = normals(drawsFor(at.seed, DrawPurpose.vaeSample, at.step, at.micro), samples.length * h * w * c)
        reconstruction = { images: images!, draws: track(tf.tensor4d(draws, shape)) }
      } else if (images !== undefined) {
        images.dispose()
      }
      return {
        samples,
        captions,
        ...(diffusion === undefined ? {} : { diffusion }),
        ...(reconstruction === undefined ? {} : { reconstruction })
      }
    })
  )

const concat = (parts: ReadonlyArray<Float32Array>): Float32Array => {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}
