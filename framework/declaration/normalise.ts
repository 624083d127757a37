import { textEncodersOf, type ModelFamily } from "./base-model.ts"
import { declaredTreatment, resolveTreatment, type ComponentName } from "./adaptation.ts"
import type { Components } from "./components.ts"
import type { Dataset } from "./dataset.ts"
import type { Declaration, Experiment } from "./experiment.ts"
import { promptsOf } from "./generation.ts"
import type { Treatment } from "./treatment.ts"

/**
 * Makes every default of a declaration explicit, in the form it was declared (what `sardine show`
 * prints and MLflow records): LoRA alpha and targets (resolveTreatment, the one place they are
 * decided), the token's encoders, prompts as objects, the sample resolution.
 */

const explicitTreatment = (treatment: Treatment, component: ComponentName): Treatment => declaredTreatment(resolveTreatment(treatment, component))

const explicitComponents = (components: Components, family: ModelFamily): Components => {
  const declared = components.textEncoders
  return {
    unet: explicitTreatment(components.unet, "unet"),
    vae: explicitTreatment(components.vae, "vae"),
    // Both encoders share the text encoders' LoRA targets, so one treatment for both stays one.
    textEncoders: "_tag" in declared
      ? explicitTreatment(declared, "text_encoder")
      : {
        textEncoder: explicitTreatment(declared.textEncoder, "text_encoder"),
        ...(declared.textEncoder2 === undefined ? {} : { textEncoder2: explicitTreatment(declared.textEncoder2, "text_encoder_2") })
      },
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
    ...(experiment.generate.prompts === undefined ? {} : { prompts: promptsOf(experiment.generate) }),
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
