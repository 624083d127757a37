import { Schema } from "effect"
import { textEncodersOf, type ModelFamily, type TextEncoderName } from "./base-model.ts"
import { LearnedToken, textEncoderTreatments, type Components } from "./components.ts"
import { ClassMap, classesOf, type Conditioning, ConditioningInput, ControlNetInit } from "./conditioning.ts"
import type { Dataset } from "./dataset.ts"
import { PositiveNumber } from "./rules.ts"
import { Frozen, Full, Lora, type Treatment } from "./treatment.ts"

/**
 * The resolved adaptation: what each component of the base does in training, every default filled,
 * produced from a decoded declaration by `resolveAdaptation` — the one thing the engines, the trained
 * model's manifest and the exporters read. Its JSON (what the torch engine's worker receives):
 *
 *   {
 *     "components": {                      every component of the base, pipeline folder names
 *       "unet": { "_tag": "full", "lr": 1e-5, "weightDecay": 0, "only": ["*"] },
 *       "vae": { "_tag": "frozen" },
 *       "text_encoder": { "_tag": "lora", "rank": 16, "alpha": 16, "dropout": 0,
 *                         "targets": ["q_proj", "k_proj", "v_proj", "out_proj"], "lr": 5e-5, "scale": 1 },
 *       "text_encoder_2": { … }             SDXL bases only
 *     },
 *     "token": null, or {
 *       "token": "<SAR>", "init": "radar", "vectors": 2, "lr": 5e-4, "normReprojection": false,
 *       "spellings": ["<SAR>", "<SAR>_1"],  the added tokenizer entries, one embedding row each
 *       "encoders": ["text_encoder", "text_encoder_2"],   every encoder of the base gets them
 *       "trained": ["text_encoder_2"]       the encoders whose rows train (the others keep the init word's)
 *     },
 *     "controlnet": {                      conditioned experiments only (absent otherwise)
 *       "input": "label-map", "column": "conditioning_file_name",
 *       "classes": { "1": "water", … },    label maps only
 *       "treatment": { "_tag": "full", … },  resolved as a component's (LoRA targets: the UNet's defaults)
 *       "init": "unet",                    or a diffusers ControlNet folder
 *       "embedding": [16, 32, 96],         declared widths; absent: diffusers' cut to the base's VAE
 *       "scale": 1, "guessMode": false     for sampling
 *     }
 *   }
 *
 * `only` and `targets` are module-name patterns (module-patterns.ts); `scale` is alpha / rank.
 */

/** A component of a diffusers pipeline, named as its folder: the one component-name union of sardine. */
export const ComponentName = Schema.Literal("unet", "vae", "text_encoder", "text_encoder_2")
export type ComponentName = typeof ComponentName.Type

/** The pipeline component of each declared text encoder. */
export const encoderComponent: Record<TextEncoderName, ComponentName> = { textEncoder: "text_encoder", textEncoder2: "text_encoder_2" }

/** Defaults as the reference trainers use them (diffusers / PEFT examples). */
export const defaultLoraTargets = (component: ComponentName | "controlnet"): ReadonlyArray<string> => {
  switch (component) {
    // A ControlNet is the UNet's encoder half (the same attention projections) plus its zero convolutions
    // and conditioning embedding's ends, which must move: zero convolutions left out keep the residuals at zero.
    case "controlnet":
      return [...defaultLoraTargets("unet"), "controlnet_down_blocks.*", "controlnet_mid_block", "controlnet_cond_embedding.*"]
    case "unet":
      return ["to_q", "to_k", "to_v", "to_out.0"]
    case "vae":
      // The VAE has attention only in its mid-blocks; its resnet convolutions carry the capacity.
      return ["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2"]
    case "text_encoder":
    case "text_encoder_2":
      return ["q_proj", "k_proj", "v_proj", "out_proj"]
  }
}

// The declaration's treatment schemas on their decoded side, with the optional fields made required.
export const ResolvedLora = Schema.extend(Schema.required(Schema.typeSchema(Lora)), Schema.Struct({ scale: PositiveNumber }))
export type ResolvedLora = typeof ResolvedLora.Type
export const ResolvedTreatment = Schema.Union(Schema.typeSchema(Frozen), Schema.typeSchema(Full), ResolvedLora)
export type ResolvedTreatment = typeof ResolvedTreatment.Type

export const ResolvedToken = Schema.extend(
  Schema.typeSchema(LearnedToken).pipe(Schema.omit("encoders")),
  Schema.Struct({
    spellings: Schema.Array(Schema.String),
    encoders: Schema.Array(ComponentName),
    trained: Schema.Array(ComponentName)
  })
)
export type ResolvedToken = typeof ResolvedToken.Type

/** An experiment's ControlNet as the engines receive it (conditioning.ts declares it). */
export const ResolvedControlNet = Schema.Struct({
  input: ConditioningInput,
  column: Schema.String,
  classes: Schema.optionalWith(ClassMap, { exact: true }),
  treatment: ResolvedTreatment,
  init: ControlNetInit,
  embedding: Schema.optionalWith(Schema.Array(Schema.Int), { exact: true }),
  scale: Schema.Number,
  guessMode: Schema.Boolean
})
export type ResolvedControlNet = typeof ResolvedControlNet.Type

export const ResolvedAdaptation = Schema.Struct({
  components: Schema.Struct({
    unet: ResolvedTreatment,
    vae: ResolvedTreatment,
    text_encoder: ResolvedTreatment,
    text_encoder_2: Schema.optionalWith(ResolvedTreatment, { exact: true })
  }),
  token: Schema.NullOr(ResolvedToken),
  controlnet: Schema.optionalWith(ResolvedControlNet, { exact: true })
})
export type ResolvedAdaptation = typeof ResolvedAdaptation.Type

/** A declared treatment with its defaults: LoRA alpha (= rank), targets (per component) and scale. */
export const resolveTreatment = (treatment: Treatment, component: ComponentName | "controlnet"): ResolvedTreatment => {
  if (treatment._tag !== "lora") return treatment
  const alpha = treatment.alpha ?? treatment.rank
  return { ...treatment, alpha, targets: treatment.targets ?? defaultLoraTargets(component), scale: alpha / treatment.rank }
}

/** The added tokens of a learned token: `<SAR>`, then `<SAR>_1`, … (diffusers' multi-vector naming). */
export const tokenSpellings = (token: string, vectors: number): Array<string> => Array.from({ length: vectors }, (_, i) => (i === 0 ? token : `${token}_${i}`))

const resolveToken = (token: LearnedToken, family: ModelFamily): ResolvedToken => {
  const { encoders: declared, ...rest } = token
  const encoders = textEncodersOf(family)
  return {
    ...rest,
    spellings: tokenSpellings(token.token, token.vectors),
    encoders: encoders.map((e) => encoderComponent[e]),
    trained: encoders.filter((e) => declared === undefined || declared.includes(e)).map((e) => encoderComponent[e])
  }
}

/** A declared ControlNet with its defaults, reading its images from `dataset` (the training data). */
export const resolveControlNet = (conditioning: Conditioning, dataset: Dataset): ResolvedControlNet => {
  const classes = classesOf(conditioning, dataset)
  return {
    input: conditioning.input,
    column: conditioning.from,
    ...(classes === undefined ? {} : { classes }),
    treatment: resolveTreatment(conditioning.treatment, "controlnet"),
    init: conditioning.init,
    ...(conditioning.embedding === undefined ? {} : { embedding: conditioning.embedding }),
    scale: conditioning.scale,
    guessMode: conditioning.guessMode
  }
}

/** The resolved adaptation of a decoded declaration's components on a base of `family`, with its ControlNet when conditioned. */
export const resolveAdaptation = (components: Components, family: ModelFamily, controlnet?: ResolvedControlNet): ResolvedAdaptation => {
  const encoders = textEncoderTreatments(components, family).map(([name, t]) => {
    const component = encoderComponent[name]
    return [component, resolveTreatment(t, component)] as const
  })
  return {
    components: {
      unet: resolveTreatment(components.unet, "unet"),
      vae: resolveTreatment(components.vae, "vae"),
      ...Object.fromEntries(encoders) as { text_encoder: ResolvedTreatment; text_encoder_2?: ResolvedTreatment }
    },
    token: components.token === undefined ? null : resolveToken(components.token, family),
    ...(controlnet === undefined ? {} : { controlnet })
  }
}

/** The components of an adaptation with their treatments, in pipeline order (unet, vae, text encoders). */
export const treatmentsOf = (adaptation: ResolvedAdaptation): Array<readonly [ComponentName, ResolvedTreatment]> =>
  ComponentName.literals.flatMap((name) => {
    const treatment = adaptation.components[name]
    return treatment === undefined ? [] : [[name, treatment] as const]
  })

const isTextEncoder = (name: ComponentName) => name === "text_encoder" || name === "text_encoder_2"

/** Does the VAE train (on reconstruction; then nothing else does)? */
export const trainsVae = (adaptation: ResolvedAdaptation): boolean => adaptation.components.vae._tag !== "frozen"

/** Do the text encoders take part in the gradient (so their outputs cannot come from a cache)? */
export const textEncodersTrain = (adaptation: ResolvedAdaptation): boolean =>
  adaptation.token !== null || treatmentsOf(adaptation).some(([name, t]) => isTextEncoder(name) && t._tag !== "frozen")

/** Does anything train on the diffusion objective (the UNet, a text encoder or the token)? */
export const trainsDiffusion = (adaptation: ResolvedAdaptation): boolean =>
  textEncodersTrain(adaptation) || adaptation.components.unet._tag !== "frozen" || trainsControlNet(adaptation)

/** Does a ControlNet train (on the diffusion objective, with the UNet's other treatments)? */
export const trainsControlNet = (adaptation: ResolvedAdaptation): boolean =>
  adaptation.controlnet !== undefined && adaptation.controlnet.treatment._tag !== "frozen"

/** A resolved treatment in the declaration's form (every default explicit, without the derived scale). */
export const declaredTreatment = (treatment: ResolvedTreatment): Treatment => {
  if (treatment._tag !== "lora") return treatment
  const { scale: _scale, ...declared } = treatment
  return declared
}

/**
 * The declaration's form of a resolved adaptation (one treatment per text encoder): for what shows a
 * strategy when only a step's adaptation is at hand (`sardine report` on a cache without its report step).
 */
export const declaredComponents = (adaptation: ResolvedAdaptation): Components => {
  const { text_encoder, text_encoder_2, unet, vae } = adaptation.components
  const token = adaptation.token
  const names = Object.entries(encoderComponent) as Array<[TextEncoderName, ComponentName]>
  return {
    unet: declaredTreatment(unet),
    vae: declaredTreatment(vae),
    textEncoders: {
      textEncoder: declaredTreatment(text_encoder),
      ...(text_encoder_2 === undefined ? {} : { textEncoder2: declaredTreatment(text_encoder_2) })
    },
    ...(token === null ? {} : {
      token: {
        token: token.token,
        init: token.init,
        vectors: token.vectors,
        lr: token.lr,
        normReprojection: token.normReprojection,
        encoders: names.filter(([, c]) => token.trained.includes(c)).map(([e]) => e)
      }
    })
  }
}
