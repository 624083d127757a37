import { textEncodersOf, type ModelFamily, type TextEncoderName } from "./base-model.ts"
import type { Components } from "./components.ts"
import type { Dataset } from "./dataset.ts"
import type { Declaration, Experiment } from "./experiment.ts"
import { promptsOf } from "./generation.ts"
import { defaultLoraTargets, type ComponentKind, type Treatment } from "./treatment.ts"

/**
 * Makes every default explicit, so that two declarations meaning the same thing have the same
 * canonical JSON (and the same content keys): one treatment per text encoder of the base, LoRA
 * alpha and targets, the token's encoders, prompts as objects.
 */

const explicitTreatment = (treatment: Treatment, component: ComponentKind): Treatment =>
  treatment._tag === "lora"
    ? {
      ...treatment,
      alpha: treatment.alpha ?? treatment.rank,
      targets: treatment.targets ?? defaultLoraTargets[component]
    }
    : treatment

/** The treatment of each text encoder of the base, whichever form was declared. */
export const textEncoderTreatments = (
  components: Components,
  family: ModelFamily
): ReadonlyArray<readonly [TextEncoderName, Treatment]> => {
  const declared = components.textEncoders
  return textEncodersOf(family).map((name) => {
    if ("_tag" in declared) return [name, declared] as const
    const own = name === "textEncoder" ? declared.textEncoder : declared.textEncoder2
    // An SDXL declaration that names only the first encoder leaves the second frozen.
    return [name, own ?? { _tag: "frozen" as const }] as const
  })
}

const explicitComponents = (components: Components, family: ModelFamily): Components => {
  const encoders = textEncoderTreatments(components, family)
  const perEncoder = Object.fromEntries(encoders.map(([name, t]) => [name, explicitTreatment(t, "textEncoder")]))
  return {
    unet: explicitTreatment(components.unet, "unet"),
    vae: explicitTreatment(components.vae, "vae"),
    textEncoders: perEncoder as Components["textEncoders"],
    ...(components.token === undefined ? {} : {
      token: { ...components.token, encoders: components.token.encoders ?? textEncodersOf(family) }
    })
  }
}

/** Side of the square samples a dataset yields. */
export const resolutionOf = (dataset: Dataset): number => dataset._tag === "synthetic" ? dataset.size : dataset.resolution.size

export const normaliseExperiment = (experiment: Experiment): Experiment => ({
  ...experiment,
  components: explicitComponents(experiment.components, experiment.base.family),
  generate: {
    ...experiment.generate,
    prompts: promptsOf(experiment.generate),
    // Samples are compared with the training data, so they default to its resolution.
    resolution: experiment.generate.resolution ?? resolutionOf(experiment.data)
  }
})

export const normaliseDeclaration = (declaration: Declaration): Declaration => {
  switch (declaration.kind) {
    case "study":
      return { ...declaration, experiments: declaration.experiments.map(normaliseExperiment) }
    case "experiment":
      return normaliseExperiment(declaration)
    case "clip":
      return declaration
  }
}
