import { diffusers, experiment, frozen, full, lora, study, synthetic, type ExperimentInput } from "../../framework/index.ts"
import { repoRoot } from "./run-process.ts"

/** The tiny SD-1-like pipeline of the model tests (absolute, so declarations written anywhere find it). */
export const tinySd1 = `${repoRoot}/test/fixtures/pipelines/sd1-tiny`

/** Fields of an experiment to replace; one given `undefined` is left out (a baseline's `train`). */
export type ExperimentOverrides = { readonly [K in keyof ExperimentInput]?: ExperimentInput[K] | undefined }

/** A small valid SD-1.x-like experiment; tests derive malformed or alternative ones from it. */
export const validExperiment = (overrides: ExperimentOverrides = {}) =>
  experiment(withoutUndefined({
    name: "tiny",
    base: diffusers(tinySd1, { family: "sd15" }),
    components: { unet: full({ lr: 1e-4 }), vae: frozen(), textEncoders: frozen() },
    data: synthetic({ n: 4, size: 32, seed: 1 }),
    train: { steps: 12, checkpointEvery: 3, seed: 7 },
    generate: { prompts: ["SAR image of a field"], seeds: [0], steps: 4 },
    evaluate: { reference: synthetic({ n: 4, size: 32, seed: 99 }) },
    ...overrides
  }) as ExperimentInput)

const withoutUndefined = (fields: Record<string, unknown>) => Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined))

/** Three strategies sharing data and reference: two trained, one baseline. */
export const fileStudy = (trainSteps = 12) =>
  study({
    name: "file-study",
    experiments: [
      validExperiment({ name: "full-unet", train: { steps: trainSteps, checkpointEvery: 3, seed: 7 } }),
      validExperiment({
        name: "lora-unet",
        components: { unet: lora({ rank: 2, lr: 1e-3 }), vae: frozen(), textEncoders: frozen() },
        train: { steps: trainSteps, checkpointEvery: 3, seed: 7 }
      }),
      validExperiment({ name: "baseline", baseline: true, components: { unet: frozen() }, train: undefined })
    ]
  })
