import * as tf from "@tensorflow/tfjs-core"
import { Schema } from "effect"
import type { Components, LearnedToken } from "../../../framework/declaration/components.ts"
import { defaultLoraTargets } from "../../../framework/declaration/adaptation.ts"
import type { Treatment } from "../../../framework/declaration/treatment.ts"
import { ADDED_TOKEN_EMBEDDING } from "../clip-text-model.ts"
import type { ParameterSpec } from "../layers.ts"
import type { LoadedModel, StableDiffusionPipeline } from "../pipeline-loader.ts"
import type { ClipTokenizer } from "../../tokenizer/clip-tokenizer.ts"
import type { Adaptation, ComponentName, LoraPart, TokenPart } from "./adapted-pipeline.ts"
import { initialTokenRows, meanRowNorm, tokenizerWithToken, tokenSpellings } from "./learned-token.ts"
import { downShape, initialLoraWeights, targetedModules, upShape, type LoraWeights } from "./lora.ts"

/**
 * Which parameters train, decided from the declaration as data (Equinox style): a treatment is a
 * filter over a component's parameter names (`full`: all of them; `frozen`, `lora`: none of the base
 * weights), LoRA adds adapter tensors on the modules its targets select, a learned token adds rows.
 * Every trainable tensor is a tf.Variable with a stable name and an optimiser group.
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
  readonly adaptation: Adaptation
  readonly treatments: ReadonlyMap<ComponentName, Treatment>
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

const ENCODER_COMPONENTS = { textEncoder: "text_encoder", textEncoder2: "text_encoder_2" } as const

/** `full` trains every parameter of the component; other treatments none of its base weights. */
export const parameterFilter = (treatment: Treatment): ((spec: ParameterSpec) => boolean) =>
  treatment._tag === "full" ? () => true : () => false

/** The treatment of each component of this pipeline, from the declaration (every encoder gets one). */
export const componentTreatments = (pipeline: StableDiffusionPipeline, components: Components): Map<ComponentName, Treatment> => {
  const out = new Map<ComponentName, Treatment>([["unet", components.unet], ["vae", components.vae]])
  const declared = components.textEncoders
  const names = pipeline.textEncoders.map((e) => e.name as ComponentName)
  if (!("_tag" in declared) && declared.textEncoder2 !== undefined && !names.includes("text_encoder_2")) {
    throw new TreatmentError({ reason: `components.textEncoders.textEncoder2: the base ${pipeline.folder} has no text_encoder_2` })
  }
  for (const name of names) {
    const own = "_tag" in declared ? declared : name === "text_encoder" ? declared.textEncoder : declared.textEncoder2
    out.set(name, own ?? { _tag: "frozen" })
  }
  return out
}

const modelOf = (pipeline: StableDiffusionPipeline, name: ComponentName): LoadedModel<unknown> => {
  if (name === "unet") return pipeline.unet
  if (name === "vae") return pipeline.vae
  const encoder = pipeline.textEncoders.find((e) => e.name === name)
  if (encoder === undefined) throw new TreatmentError({ reason: `the base ${pipeline.folder} has no ${name}` })
  return encoder
}

const fieldOf = (name: ComponentName): string =>
  name === "unet" ? "components.unet" : name === "vae" ? "components.vae" : `components.textEncoders${name === "text_encoder_2" ? ".textEncoder2" : ""}`

const tokenEncoders = (pipeline: StableDiffusionPipeline, token: LearnedToken): Array<ComponentName> => {
  const present = pipeline.textEncoders.map((e) => e.name as ComponentName)
  if (token.encoders === undefined) return present
  return token.encoders.map((e) => {
    const name = ENCODER_COMPONENTS[e]
    if (!present.includes(name)) throw new TreatmentError({ reason: `components.token.encoders: the base has no ${name} (for "${e}")` })
    return name
  })
}

/**
 * Sets up training on `pipeline` as `components` declares: fully trained parameters become variables
 * in place (sharing the loaded data, no copy), LoRA adapters and token rows are created from `seed`.
 */
export const buildTrainingModel = (pipeline: StableDiffusionPipeline, components: Components, seed: number): TrainingModel => {
  // Adapters and rows made before a declaration error is found are released (the pipeline's own maps go with the pipeline).
  const created: Array<tf.Tensor> = []
  try {
    return buildInto(pipeline, components, seed, created)
  } catch (error) {
    tf.dispose(created)
    throw error
  }
}

const buildInto = (pipeline: StableDiffusionPipeline, components: Components, seed: number, created: Array<tf.Tensor>): TrainingModel => {
  const treatments = componentTreatments(pipeline, components)
  const trainables: Array<Trainable> = []
  const groups: Array<OptimizerGroup> = []
  const parts: Record<string, Adaptation["components"][ComponentName]> = {}

  for (const [name, treatment] of treatments) {
    if (treatment._tag === "frozen") continue
    const model = modelOf(pipeline, name)
    if (treatment._tag === "full") {
      const keep = parameterFilter(treatment)
      for (const spec of model.specs.filter(keep)) {
        const variable = variableOf(model.parameters.get(spec.name)!)
        model.parameters.set(spec.name, variable)
        trainables.push({ name: `${name}.${spec.name}`, variable, group: name })
      }
      groups.push({ name, lr: treatment.lr, weightDecay: treatment.weightDecay })
      parts[name] = { kind: "full" }
      continue
    }
    const rank = treatment.rank
    const targets = treatment.targets ?? defaultLoraTargets(name)
    const { modules, unmatched } = targetedModules(model.specs, targets)
    if (unmatched.length > 0) {
      throw new TreatmentError({ reason: `${fieldOf(name)}.targets: ${unmatched.map((t) => JSON.stringify(t)).join(", ")} match no Linear or Conv2d module of the ${name}` })
    }
    const weights = new Map<string, LoraWeights>()
    for (const m of modules) {
      const initial = initialLoraWeights(m, rank, seed)
      const down = variableOf(tf.tensor(initial.down, downShape(m, rank)))
      const up = variableOf(tf.tensor(initial.up, upShape(m, rank)))
      created.push(down, up)
      weights.set(m.module, { down, up })
      trainables.push({ name: `${name}.${m.module}.lora_A.weight`, variable: down, group: name })
      trainables.push({ name: `${name}.${m.module}.lora_B.weight`, variable: up, group: name })
    }
    groups.push({ name, lr: treatment.lr, weightDecay: 0 })
    const lora: LoraPart = {
      kind: "lora", rank, alpha: treatment.alpha ?? rank, dropout: treatment.dropout, targets, modules, weights
    }
    parts[name] = lora
  }

  const tokenNorms = new Map<ComponentName, number>()
  let token: TokenPart | undefined
  if (components.token !== undefined) {
    const declared = components.token
    const trained = tokenEncoders(pipeline, declared)
    const spellings = tokenSpellings(declared.token, declared.vectors)
    const rows = new Map<ComponentName, tf.Tensor>()
    const tokenizers = new Map<ComponentName, ClipTokenizer>()
    for (const encoder of pipeline.textEncoders) {
      const name = encoder.name as ComponentName
      try {
        tokenizers.set(name, tokenizerWithToken(encoder.tokenizer, spellings, encoder.plan.config.vocab_size))
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
      if (!trained.includes(name)) {
        rows.set(name, initial)
        continue
      }
      const variable = variableOf(initial)
      created.push(variable)
      rows.set(name, variable)
      trainables.push({ name: `${name}.${ADDED_TOKEN_EMBEDDING}`, variable, group: "token" })
      if (declared.normReprojection) tokenNorms.set(name, meanRowNorm(encoder.parameters))
    }
    groups.push({ name: "token", lr: declared.lr, weightDecay: 0 })
    token = { token: declared.token, init: declared.init, spellings, rows, tokenizers, trained, normReprojection: declared.normReprojection }
  }

  return {
    pipeline,
    adaptation: { components: parts, ...(token === undefined ? {} : { token }) },
    treatments,
    trainables,
    groups,
    tokenNorms
  }
}

/** Does any part read the text encoders' output (so text must be encoded, cached or live)? */
export const trainsDiffusion = (model: TrainingModel): boolean =>
  model.adaptation.token !== undefined ||
  [...model.treatments].some(([name, t]) => name !== "vae" && t._tag !== "frozen")

export const trainsVae = (model: TrainingModel): boolean => model.treatments.get("vae")?._tag !== "frozen"

/** Do the text encoders take part in the gradient (so their outputs cannot come from a cache)? */
export const textEncodersTrain = (model: TrainingModel): boolean =>
  model.adaptation.token !== undefined ||
  [...model.treatments].some(([name, t]) => name.startsWith("text_encoder") && t._tag !== "frozen")

/** Releases what training added (adapters, token rows); fully trained weights go with the pipeline. */
export const disposeAdaptation = (adaptation: Adaptation): void => {
  for (const part of Object.values(adaptation.components)) {
    if (part?.kind === "lora") for (const w of part.weights.values()) tf.dispose([w.down, w.up])
  }
  if (adaptation.token !== undefined) for (const rows of adaptation.token.rows.values()) rows.dispose()
}
