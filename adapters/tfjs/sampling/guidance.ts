import * as tf from "@tensorflow/tfjs-core"
import { controlNet, type ControlNetPlan } from "../controlnet.ts"
import type { Layers } from "../layers.ts"
import { type ControlResiduals, unet2dCondition } from "../unet2d-condition.ts"
import type { Conditioning } from "./conditioning.ts"
import type { DiffusionModels } from "./diffusion-models.ts"
import type { Denoiser } from "./sampler.ts"

/** A ControlNet and the conditioning image it reads for one sample (StableDiffusion(XL)ControlNetPipeline's `image`). */
export interface Control {
  readonly plan: ControlNetPlan
  readonly layers: Layers
  /** [1, H, W, conditioning_channels], in [0, 1], at the image's size. */
  readonly image: tf.Tensor4D
  /** controlnet_conditioning_scale. */
  readonly scale: number
  /** guess_mode: the ControlNet sees only the conditional half of classifier-free guidance. */
  readonly guessMode: boolean
}

const rows = <T extends tf.Tensor>(x: T, from: number, count: number): T => tf.slice(x, [from], [count]) as T

/**
 * The ControlNet's residuals for the UNet's batch, as the ControlNet pipelines compute them: on the whole
 * batch (the image repeated per row), or in guess mode under guidance on the conditional row only, with
 * zero residuals for the unconditional one.
 */
const residualsFor = (control: Control, conditioning: Conditioning, sample: tf.Tensor4D, timestep: number): ControlResiduals => {
  const conditionalOnly = control.guessMode && conditioning.guided
  const batch = conditionalOnly ? 1 : sample.shape[0]
  const from = conditioning.guided && conditionalOnly ? 1 : 0
  const textTime = conditioning.textTime
  const residuals = controlNet(control.plan, control.layers, {
    sample: conditionalOnly ? rows(sample, 1, 1) : sample,
    timesteps: [timestep],
    encoderHiddenStates: rows(conditioning.context, from, batch),
    ...(textTime === undefined ? {} : {
      textTime: { textEmbeds: rows(textTime.textEmbeds, from, batch), timeIds: textTime.timeIds.slice(from, from + batch) }
    }),
    condition: batch === 1 ? control.image : tf.concat(Array.from({ length: batch }, () => control.image)),
    conditioningScale: control.scale,
    guessMode: control.guessMode
  })
  if (!conditionalOnly) return residuals
  const withZeros = (r: tf.Tensor4D) => tf.concat([tf.zerosLike(r), r])
  return { down: residuals.down.map(withZeros), mid: withZeros(residuals.mid) }
}

/**
 * Classifier-free guidance (Ho & Salimans 2022): u + s·(c − u) from one UNet call on the batch
 * [unconditional, conditional], as diffusers' pipelines run it. Unguided conditioning is the UNet alone.
 * With a `control`, the UNet adds the ControlNet's residuals.
 */
export const guidedDenoiser =
  (unet: DiffusionModels["unet"], conditioning: Conditioning, guidanceScale: number, control?: Control): Denoiser => (modelInput, timestep) =>
    tf.tidy(() => {
      const sample = conditioning.guided ? tf.concat([modelInput, modelInput]) : modelInput
      const prediction = unet2dCondition(unet.plan, unet.layers, {
        sample,
        timesteps: [timestep],
        encoderHiddenStates: conditioning.context,
        ...(conditioning.textTime ? { textTime: conditioning.textTime } : {}),
        ...(control === undefined ? {} : { controlResiduals: residualsFor(control, conditioning, sample, timestep) })
      })
      if (!conditioning.guided) return prediction
      const [unconditional, conditional] = tf.split(prediction, 2) as [tf.Tensor4D, tf.Tensor4D]
      return tf.add(unconditional, tf.mul(tf.sub(conditional, unconditional), guidanceScale))
    })
