import * as tf from "@tensorflow/tfjs-core"
import { autoencoderKlDecode } from "../autoencoder-kl.ts"
import type { Conditioning } from "./conditioning.ts"
import type { DiffusionModels } from "./diffusion-models.ts"
import { drawNoise, gaussianStream } from "./gaussian-noise.ts"
import { type Control, guidedDenoiser } from "./guidance.ts"
import type { Sampler } from "./sampler.ts"

/** How many pixels one latent covers per side: 2^(VAE blocks − 1), diffusers' `vae_scale_factor`. */
export const vaeScaleFactor = (vae: DiffusionModels["vae"]): number => 2 ** (vae.plan.config.block_out_channels.length - 1)

export interface LatentRequest {
  readonly models: DiffusionModels
  readonly sampler: Sampler
  readonly conditioning: Conditioning
  readonly guidanceScale: number
  /** Latent height and width. */
  readonly size: readonly [number, number]
  /** The sample's noise stream: its seed and replicate number. */
  readonly seed: number
  readonly replicate: number
  readonly onStep?: (done: number, total: number) => void
  /** A ControlNet with this sample's conditioning image. */
  readonly control?: Control
}

/**
 * The final latents of one sample [1, h, w, in_channels]. The initial noise and every stochastic step's
 * noise come, in that order, from the (seed, replicate) Gaussian stream.
 */
export const sampleLatents = (request: LatentRequest): tf.Tensor4D => {
  const { models, conditioning } = request
  const stream = gaussianStream(request.seed, request.replicate)
  const initial = drawNoise(stream, [1, request.size[0], request.size[1], models.unet.plan.config.in_channels])
  try {
    const denoise = guidedDenoiser(models.unet, conditioning, request.guidanceScale, request.control)
    return request.sampler(denoise, initial, (shape) => drawNoise(stream, shape), request.onStep)
  } finally {
    initial.dispose()
  }
}

/**
 * The normalised amplitude [H, W] in [0, 1] of final latents: decoded at latents / scaling_factor, the
 * VAE's [−1, 1] output mapped to [0, 1] and clamped as diffusers' image postprocessing does, then
 * averaged over the channels (SAR is one channel; a one-channel VAE's output is taken as it is).
 */
export const decodeAmplitude = (vae: DiffusionModels["vae"], latents: tf.Tensor4D): tf.Tensor2D =>
  tf.tidy(() => {
    const image = autoencoderKlDecode(vae.plan, vae.layers, tf.div(latents, vae.plan.config.scaling_factor))
    const unit = tf.clipByValue(tf.add(tf.div(image, 2), 0.5), 0, 1)
    return tf.squeeze(tf.mean(unit, -1), [0]) as tf.Tensor2D
  })
