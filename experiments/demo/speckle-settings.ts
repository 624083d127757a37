import { experiment, study } from "sardine"
import demo from "./study.ts"

/**
 * The demo study's trained strategies sampled with other generation settings (issue 22: does a
 * sampler, a step count or a guidance scale bring the generated speckle — per-image ENL — to the
 * reference's without losing the prompt?). Each experiment is one of the demo's, its `generate`
 * changed and its name suffixed with the setting; its training is the demo's own (same content key),
 * so with the demo's cache only the generate and evaluate steps run:
 *
 *   npx sardine run experiments/demo/study.ts                 # once: trains the strategies
 *   npx tsx tools/demo-speckle-settings.ts                    # samples, evaluates, prints the table
 *
 * A setting is named `<sampler>-<steps>-g<guidance>` plus what else it changes.
 */

type Generation = (typeof demo.experiments)[number]["generate"]

/** A generation setting: a name and what it changes in the demo's `generate`. */
export interface SpeckleSetting {
  readonly name: string
  readonly generate: Partial<Generation>
}

const setting = (
  sampler: NonNullable<Generation["sampler"]>,
  steps: number,
  guidanceScale: number,
  extra: { readonly suffix: string; readonly generate: Partial<Generation> } = { suffix: "", generate: {} }
): SpeckleSetting => ({
  name: `${sampler}-${steps}-g${guidanceScale}${extra.suffix}`,
  generate: { sampler, steps, guidanceScale, ...extra.generate }
})

/** The demo's own setting first (Euler, 20 steps, guidance 4), then one change at a time. */
export const speckleSettings: ReadonlyArray<SpeckleSetting> = [
  setting("euler", 20, 4),
  // Samplers: deterministic ODE solvers, and those that add fresh noise at every step.
  setting("euler_ancestral", 20, 4),
  setting("ddpm", 20, 4),
  setting("ddim", 20, 4),
  setting("ddim", 20, 4, { suffix: "-eta1", generate: { eta: 1 } }),
  setting("heun", 20, 4),
  setting("dpmsolver_multistep", 20, 4),
  setting("dpmsolver_multistep", 20, 4, { suffix: "-sde", generate: { schedulerConfig: { algorithm_type: "sde-dpmsolver++" } } }),
  setting("unipc_multistep", 20, 4),
  // Where the schedule starts: "trailing" begins at the last training timestep (the base's "leading" at 951).
  setting("euler", 20, 4, { suffix: "-trailing", generate: { schedulerConfig: { timestep_spacing: "trailing" } } }),
  setting("euler_ancestral", 20, 4, { suffix: "-trailing", generate: { schedulerConfig: { timestep_spacing: "trailing" } } }),
  // Guidance.
  setting("euler", 20, 1),
  setting("euler", 20, 2),
  setting("euler", 20, 7.5),
  setting("euler_ancestral", 20, 2),
  setting("euler_ancestral", 20, 7.5),
  // Steps.
  setting("euler", 50, 4),
  setting("euler_ancestral", 50, 4),
  setting("ddpm", 50, 4)
]

/** The experiment `name` of the demo with `generate` changed as `s` says. */
export const settingName = (strategy: string, s: SpeckleSetting) => `${strategy}.${s.name}`

/**
 * The frozen base prompted in other words: it was pretrained on "optical image of …" captions, so
 * "SAR image of …" begins with a word it never learned. The evaluate step scores an image with its own
 * prompt's wording; tools/demo-clip-modalities.ts rescores these samples with the demo's.
 */
const wordings = [
  { name: "optical-wording", prefix: "optical image of " },
  { name: "no-modality-word", prefix: "" }
]

const baseline = demo.experiments.find((e) => e.baseline === true)!
const reworded = wordings.map((w) =>
  experiment({
    ...baseline,
    name: `${baseline.name}.${w.name}`,
    generate: {
      ...baseline.generate,
      prompts: baseline.generate.prompts!.map((p) => typeof p === "string" ? p : { ...p, text: p.text.replace(/^SAR image of /, w.prefix) })
    }
  })
)

export default study({
  ...demo,
  // The variants are named after the demo's strategies: the demo's comparison names none of them.
  compare: [],
  name: "demo-speckle-settings",
  description: "The demo's strategies sampled with other samplers, step counts and guidance scales: generated speckle (ENL) against prompt following.",
  experiments: [
    ...demo.experiments.flatMap((e) =>
      speckleSettings.map((s) =>
        // A setting names its sampler whole: the demo's scheduler options (its SDE variant) do not carry over. A
        // strategy built on another's training (hybrid-on-sar-vae) builds on that one's variant of the same setting.
        experiment({
          ...e,
          name: settingName(e.name, s),
          ...(e.base._tag === "trained" ? { base: { ...e.base, experiment: settingName(e.base.experiment, s) } } : {}),
          generate: { ...e.generate, schedulerConfig: {}, ...s.generate }
        })
      )
    ),
    ...reworded
  ]
})
