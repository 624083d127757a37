import * as tf from "@tensorflow/tfjs-core"
import { unet2dCondition } from "../unet2d-condition.ts"
import type { Conditioning } from "./conditioning.ts"
import type { DiffusionModels } from "./diffusion-models.ts"
import type { Denoiser } from "./sampler.ts"

/**
 * Classifier-free guidance (Ho & Salimans 2022): u + s·(c − u) from one UNet call on the batch
 * [unconditional, conditional], as diffusers' pipelines run it. Unguided conditioning is the UNet alone.
 */
export const guidedDenoiser = (unet: DiffusionModels["unet"], conditioning: Conditioning, guidanceScale: number): Denoiser =>
  (modelInput, timestep) =>
    tf.tidy(() => {
      const inputs = {
        timesteps: [timestep],
        encoderHiddenStates: conditioning.context,
        ...(conditioning.textTime ? { textTime: conditioning.textTime } : {})
      }
      if (!conditioning.guided) return unet2dCondition(unet.plan, unet.layers, { ...inputs, sample: modelInput })
      const prediction = unet2dCondition(unet.plan, unet.layers, { ...inputs, sample: tf.concat([modelInput, modelInput]) })
      const [unconditional, conditional] = tf.split(prediction, 2) as [tf.Tensor4D, tf.Tensor4D]
      return tf.add(unconditional, tf.mul(tf.sub(conditional, unconditional), guidanceScale))
    })
