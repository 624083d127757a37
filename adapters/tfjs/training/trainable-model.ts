import * as tf from "@tensorflow/tfjs-core"
import { Schema } from "effect"
import { treatmentsOf, type ComponentName, type ResolvedAdaptation, type ResolvedTreatment } from "../../../framework/declaration/adaptation.ts"
import { partition, unmatchedPatterns } from "../../../framework/declaration/partition.ts"
import { ADDED_TOKEN_EMBEDDING } from "../clip-text-model.ts"
import type { LoadedModel, StableDiffusionPipeline } from "../pipeline-loader.ts"
import type { ControlNetPlan } from "../controlnet.ts"
import type { AdaptationTensors, AdaptedName, TokenRows } from "./adapted-pipeline.ts"
import { initialTokenRows, meanRowNorm, tokenizerWithToken } from "./learned-token.ts"
import { downShape, initialLoraWeights, upShape, type LoraWeights } from "./lora.ts"

/**
 * Which parameters train, decided by the resolved adaptation as data (Equinox style): `partition`
 * splits each component's parameters into trainable and frozen ones and names the modules LoRA
 * adapts; a learned token adds rows. Every trainable tensor is a tf.Variable with a stable name and an
 * optimiser group.
 */

export interface Trainable {
  /** Stable name in checkpoints and model files: `unet.conv_in.weight`, `unet.<module>.lora_A.weight`, … */
  readonly name: string
  readonly variable: tf.Variable
  /** Optimiser group: the component name, or "token". */
  readonly group: string
}

export interface OptimizerGroup {
  readonly name: string
  readonly lr: number
  readonly weightDecay: number
}

export interface TrainingModel {
  readonly pipeline: StableDiffusionPipeline
  readonly tensors: AdaptationTensors
  readonly trainables: ReadonlyArray<Trainable>
  readonly groups: ReadonlyArray<OptimizerGroup>
  /** Per encoder whose token rows train with norm re-projection: the pretrained rows' mean length. */
  readonly tokenNorms: ReadonlyMap<ComponentName, number>
}

/** The declaration asks for something this pipeline cannot do; the reason names the field. */
export class TreatmentError extends Schema.TaggedError<TreatmentError>()("TreatmentError", { reason: Schema.String }) {
  override get message() {
    return this.reason
  }
}

/** A variable taking over `tensor`'s data (shared, not copied); the tensor handle is released. */
const variableOf = (tensor: tf.Tensor): tf.Variable => {
  const variable = tf.variable(tensor, true)
  tensor.dispose()
  return variable
}

/** Each component of the adaptation with the pipeline's model of it; the two must name the same components. */
export const adaptedModels = (
  pipeline: StableDiffusionPipeline,
  adaptation: ResolvedAdaptation
): Array<readonly [ComponentName, LoadedModel<unknown>, ResolvedTreatment]> => {
  const models = new Map<ComponentName, LoadedModel<unknown>>([
    ["unet", pipeline.unet],
    ["vae", pipeline.vae],
    ...pipeline.textEncoders.map((e) => [e.name, e] as const)
  ])
  const declared = treatmentsOf(adaptation)
  const missing = declared.filter(([name]) => !models.has(name)).map(([name]) => name)
  const undeclared = [...models.keys()].filter((name) => adaptation.components[name] === undefined)
  if (missing.length > 0 || undeclared.length > 0) {
    throw new TreatmentError({
      reason: `the base ${pipeline.folder} has ${[...models.keys()].join(", ")}, but the declaration treats ${declared.map(([n]) => n).join(", ")}` +
        " (does base.family match the folder?)"
    })
  }
  return declared.map(([name, treatment]) => [name, models.get(name)!, treatment] as const)
}

/** The reason a treatment's patterns do not fit a model, or undefined when each selects something. */
const patternProblems = (name: AdaptedName, model: LoadedModel<unknown>, treatment: ResolvedTreatment) => {
  const unmatched = unmatchedPatterns(model.specs, treatment, name)
  const field = name === "controlnet" ? "conditioning.treatment" : name
  return unmatched.length === 0 ? undefined : unmatched.map((u) => `${field}: ${u.field}.${u.index}: ${u.message}`).join("; ")
}

/**
 * Sets up training on `pipeline` as `adaptation` says: fully trained parameters become variables in
 * place (sharing the loaded data, no copy), LoRA adapters and token rows are created from `seed`.
 */
export const buildTrainingModel = (
  pipeline: StableDiffusionPipeline,
  adaptation: ResolvedAdaptation,
  seed: number,
  controlnet?: LoadedModel<ControlNetPlan>
): TrainingModel => {
  // Adapters and rows made before a declaration error is found are released (the pipeline's own maps go with the pipeline).
  const created: Array<tf.Tensor> = []
  try {
    return buildInto(pipeline, adaptation, seed, created, controlnet)
  } catch (error) {
    tf.dispose(created)
    throw error
  }
}

const buildInto = (
  pipeline: StableDiffusionPipeline,
  adaptation: ResolvedAdaptation,
  seed: number,
  created: Array<tf.Tensor>,
  controlnet: LoadedModel<ControlNetPlan> | undefined
): TrainingModel => {
  const trainables: Array<Trainable> = []
  const groups: Array<OptimizerGroup> = []
  const lora = new Map<AdaptedName, ReadonlyMap<string, LoraWeights>>()
  if ((adaptation.controlnet === undefined) !== (controlnet === undefined)) {
    throw new TreatmentError({ reason: "conditioning: the adaptation and the ControlNet given to train disagree (one without the other)" })
  }
  const trained: Array<readonly [AdaptedName, LoadedModel<unknown>, ResolvedTreatment]> = [
    ...adaptedModels(pipeline, adaptation),
    ...(controlnet === undefined || adaptation.controlnet === undefined ? [] : [["controlnet", controlnet, adaptation.controlnet.treatment] as const])
  ]

  for (const [name, model, treatment] of trained) {
    if (treatment._tag === "frozen") continue
    const problems = patternProblems(name, model, treatment)
    if (problems !== undefined) throw new TreatmentError({ reason: problems })
    const { adapted, trainable } = partition(model.specs, treatment)
    for (const parameter of trainable) {
      const variable = variableOf(model.parameters.get(parameter)!)
      model.parameters.set(parameter, variable)
      trainables.push({ name: `${name}.${parameter}`, variable, group: name })
    }
    if (treatment._tag === "lora") {
      const weights = new Map<string, LoraWeights>()
      for (const m of adapted) {
        const initial = initialLoraWeights(m, treatment.rank, seed)
        const down = variableOf(tf.tensor(initial.down, downShape(m, treatment.rank)))
        const up = variableOf(tf.tensor(initial.up, upShape(m, treatment.rank)))
        created.push(down, up)
        weights.set(m.module, { down, up })
        trainables.push({ name: `${name}.${m.module}.lora_A.weight`, variable: down, group: name })
        trainables.push({ name: `${name}.${m.module}.lora_B.weight`, variable: up, group: name })
      }
      lora.set(name, weights)
    }
    groups.push({ name, lr: treatment.lr, weightDecay: treatment._tag === "full" ? treatment.weightDecay : 0 })
  }

  const tokenNorms = new Map<ComponentName, number>()
  const token = new Map<ComponentName, TokenRows>()
  const declared = adaptation.token
  if (declared !== null) {
    for (const encoder of pipeline.textEncoders) {
      const name = encoder.name
      let tokenizer
      try {
        tokenizer = tokenizerWithToken(encoder.tokenizer, declared.spellings, encoder.plan.config.vocab_size)
      } catch (error) {
        throw new TreatmentError({ reason: `components.token.token: ${(error as Error).message} (${name})` })
      }
      let initial: tf.Tensor2D
      try {
        initial = initialTokenRows(encoder.parameters, encoder.tokenizer, declared.init, declared.vectors)
        created.push(initial)
      } catch (error) {
        throw new TreatmentError({ reason: `components.token.init: ${(error as Error).message} (${name})` })
      }
      if (!declared.trained.includes(name)) {
        token.set(name, { rows: initial, tokenizer })
        continue
      }
      const variable = variableOf(initial)
      created.push(variable)
      token.set(name, { rows: variable, tokenizer })
      trainables.push({ name: `${name}.${ADDED_TOKEN_EMBEDDING}`, variable, group: "token" })
      if (declared.normReprojection) tokenNorms.set(name, meanRowNorm(encoder.parameters))
    }
    groups.push({ name: "token", lr: declared.lr, weightDecay: 0 })
  }

  return { pipeline, tensors: { adaptation, lora, token, ...(controlnet === undefined ? {} : { controlnet }) }, trainables, groups, tokenNorms }
}

/** Releases what training added (adapters, token rows, the ControlNet); fully trained weights of the components go with the pipeline. */
export const disposeAdaptation = (tensors: AdaptationTensors): void => {
  for (const weights of tensors.lora.values()) for (const w of weights.values()) tf.dispose([w.down, w.up])
  for (const { rows } of tensors.token.values()) rows.dispose()
  if (tensors.controlnet !== undefined) tf.dispose([...tensors.controlnet.parameters.values()])
}
