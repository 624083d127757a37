import * as tf from "@tensorflow/tfjs-core"
import type { Training } from "../../../framework/declaration/training.ts"
import { autoencoderKlDecode, autoencoderKlEncode, type AutoencoderKlPlan } from "../autoencoder-kl.ts"
import type { Layers } from "../layers.ts"

/**
 * The VAE's reconstruction objective: encode, sample the latent with the given standard-normal
 * draws (reparameterised, so gradients reach the encoder), decode, L1 or MSE against the input,
 * plus `klWeight` × the KL divergence to N(0, I) (summed over latent elements, averaged over the
 * batch, as diffusers' DiagonalGaussianDistribution.kl()).
 */
export const vaeLoss = (
  plan: AutoencoderKlPlan,
  layers: Layers,
  images: tf.Tensor4D,
  draws: tf.Tensor4D,
  objective: Training["vae"]
): tf.Scalar =>
  tf.tidy(() => {
    const { mean, logvar } = autoencoderKlEncode(plan, layers, images)
    const latents = tf.add(mean, tf.mul(tf.exp(tf.mul(logvar, 0.5)), draws)) as tf.Tensor4D
    const reconstruction = autoencoderKlDecode(plan, layers, latents)
    const error = objective.loss === "l1"
      ? tf.mean(tf.abs(tf.sub(reconstruction, images)))
      : tf.mean(tf.squaredDifference(reconstruction, images))
    if (objective.klWeight === 0) return error as tf.Scalar
    const kl = tf.mean(tf.mul(tf.sum(tf.sub(tf.sub(tf.add(tf.square(mean), tf.exp(logvar)), 1), logvar), [1, 2, 3]), 0.5))
    return tf.add(error, tf.mul(kl, objective.klWeight)) as tf.Scalar
  })
