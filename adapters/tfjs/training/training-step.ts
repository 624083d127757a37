import * as tf from "@tensorflow/tfjs-core"
import "./register-gradients.ts"
import type { Training } from "../../../framework/declaration/training.ts"
import { mixSeed } from "../../data/seeded-random.ts"
import { encodePromptSd, encodePromptSdxl, sdxlTimeIds } from "../prompt-encoding.ts"
import type { NoiseSchedule } from "../schedulers/noise-schedule.ts"
import { adaptedPipeline, type AdaptedPipeline } from "./adapted-pipeline.ts"
import { adamwStep, type AdamWState } from "./adamw.ts"
import { diffusionLoss } from "./diffusion-loss.ts"
import { emaDecay, updateEma, type EmaState } from "./exponential-moving-average.ts"
import { clipFactor, globalNorm } from "./gradient-norm.ts"
import { learningRateFactor } from "./learning-rate.ts"
import { reprojectedRows } from "./learned-token.ts"
import type { MicroBatch } from "./micro-batch.ts"
import type { TrainingModel } from "./trainable-model.ts"
import { DrawPurpose } from "./training-draws.ts"
import { vaeLoss } from "./vae-loss.ts"

/** The text conditioning of a micro-batch: from the cache, or through the (possibly training) encoders. */
export const conditioning = (view: AdaptedPipeline, batch: MicroBatch, diffusion: NonNullable<MicroBatch["diffusion"]>) => {
  const sdxl = view.base.family === "sdxl"
  if (diffusion.cachedText !== undefined) {
    const { prompt, pooled } = diffusion.cachedText
    return { encoderHiddenStates: prompt, ...(sdxl ? { textTime: { textEmbeds: pooled!, timeIds: diffusion.timeIds } } : {}) }
  }
  const prompts = batch.captions.map(view.convertPrompt)
  if (!sdxl) return { encoderHiddenStates: encodePromptSd(view.textEncoders[0]!, prompts) }
  const { promptEmbeds, pooledPromptEmbeds } = encodePromptSdxl(view.textEncoders, prompts)
  // Checks the UNet's added-embedding width against the ids once per batch, as the pipeline does.
  sdxlTimeIds(view.base.unet.plan, view.textEncoders[view.textEncoders.length - 1]!.plan, {
    originalSize: [diffusion.timeIds[0]![0]!, diffusion.timeIds[0]![1]!],
    cropTopLeft: [0, 0],
    targetSize: [diffusion.timeIds[0]![4]!, diffusion.timeIds[0]![5]!]
  })
  return { encoderHiddenStates: promptEmbeds, textTime: { textEmbeds: pooledPromptEmbeds, timeIds: diffusion.timeIds } }
}

export interface Gradients {
  readonly loss: number
  /** By trainable name; a trainable the loss does not reach has none. */
  readonly gradients: Map<string, tf.Tensor>
}

/** Loss and gradients of one micro-batch (LoRA dropout masks keyed by seed, step and micro-batch). */
export const microBatchGradients = (
  model: TrainingModel,
  schedule: NoiseSchedule,
  train: Training,
  batch: MicroBatch,
  at: { readonly step: number; readonly micro: number }
): Gradients => {
  const view = adaptedPipeline(model.pipeline, model.tensors, { dropoutSeed: mixSeed(train.seed, DrawPurpose.loraDropout, at.step, at.micro) })
  const pipeline = model.pipeline
  const lossOf = (): tf.Scalar => {
    const parts: Array<tf.Scalar> = []
    const d = batch.diffusion
    if (d !== undefined) {
      const c = conditioning(view, batch, d)
      const control = view.controlnet === undefined || d.condition === undefined ? undefined : { ...view.controlnet, condition: d.condition }
      parts.push(
        diffusionLoss(
          schedule,
          pipeline.unet.plan,
          view.unet,
          { latents: d.latents, noise: d.noise, timesteps: d.timesteps, ...c },
          train.minSnrGamma,
          control
        )
      )
    }
    const r = batch.reconstruction
    if (r !== undefined) parts.push(vaeLoss(pipeline.vae.plan, view.vae, r.images, r.draws, train.vae))
    return parts.length === 1 ? parts[0]! : tf.addN(parts) as tf.Scalar
  }
  const byVariable = new Map(model.trainables.map((t) => [t.variable.name, t.name]))
  const { value, grads } = tf.variableGrads(lossOf, model.trainables.map((t) => t.variable))
  const loss = value.dataSync()[0]!
  value.dispose()
  return { loss, gradients: new Map(Object.entries(grads).map(([variable, g]) => [byVariable.get(variable)!, g])) }
}

/** Adds `next` into `sum` (taking ownership of both's tensors). */
export const accumulate = (sum: Map<string, tf.Tensor>, next: Map<string, tf.Tensor>): void => {
  for (const [name, g] of next) {
    const previous = sum.get(name)
    if (previous === undefined) {
      sum.set(name, g)
      continue
    }
    sum.set(name, tf.add(previous, g))
    tf.dispose([previous, g])
  }
}

export interface OptimizerState {
  readonly adam: AdamWState
  readonly ema: EmaState | undefined
}

export interface StepOutcome {
  readonly gradNorm: number
  readonly lr: Readonly<Record<string, number>>
}

/**
 * The optimiser step after `microBatches` micro-batches summed into `sum` (released here): average,
 * global-norm clipping, AdamW per group at the scheduled rates, token norm re-projection, EMA.
 */
export const optimizerStep = (
  model: TrainingModel,
  train: Training,
  state: OptimizerState,
  sum: Map<string, tf.Tensor>,
  step: number
): StepOutcome => {
  const average = new Map([...sum].map(([name, g]) => [name, train.gradientAccumulation === 1 ? g : tf.div(g, train.gradientAccumulation)]))
  if (train.gradientAccumulation !== 1) tf.dispose([...sum.values()])
  const gradNorm = globalNorm([...average.values()])
  const clip = clipFactor(gradNorm, train.maxGradNorm)
  const factor = learningRateFactor(train.lrSchedule, step, train.steps)
  const groups = new Map(model.groups.map((g) => [g.name, g]))
  const updates = model.trainables.flatMap((t) => {
    const g = average.get(t.name)
    if (g === undefined) return []
    const group = groups.get(t.group)!
    return [{ name: t.name, variable: t.variable, gradient: clip === 1 ? g : tf.mul(g, clip), lr: group.lr * factor, weightDecay: group.weightDecay }]
  })
  adamwStep(updates, state.adam, train.optimizer)
  tf.dispose([...average.values(), ...updates.map((u) => u.gradient)])
  for (const [encoder, norm] of model.tokenNorms) {
    const rows = model.tensors.token.get(encoder)!.rows as tf.Variable
    const projected = reprojectedRows(rows as tf.Tensor2D, norm)
    rows.assign(projected)
    projected.dispose()
  }
  if (state.ema !== undefined && train.ema !== undefined) updateEma(state.ema, model.trainables, emaDecay(train.ema.decay, step + 1))
  return { gradNorm, lr: Object.fromEntries(model.groups.map((g) => [g.name, g.lr * factor])) }
}
