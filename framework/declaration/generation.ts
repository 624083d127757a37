import { Schema } from "effect"
import { Dataset } from "./dataset.ts"
import { Bool, ClosedFraction, IntegerAtLeast, NonEmptyString, NonNegativeNumber, numberWhere, OneOf, Seed } from "./rules.ts"

/**
 * A prompt to sample. `split` says whether its concept appeared in the SAR training captions
 * ("seen") or was withheld ("unseen"); reports compare the two. `{token}` stands for the
 * experiment's learned token. `negativePrompt` replaces the generation's for this prompt.
 */
export const Prompt = Schema.Struct({
  text: NonEmptyString,
  split: Schema.optionalWith(OneOf("seen", "unseen"), { exact: true, default: () => "seen" as const }),
  negativePrompt: Schema.optionalWith(Schema.String, { exact: true })
})
export type Prompt = typeof Prompt.Type

/**
 * The samplers, each exactly one diffusers scheduler class (named after its module,
 * `scheduling_<name>[_discrete].py`). Both engines build that class from the pipeline's
 * `scheduler/scheduler_config.json` with the declared `schedulerConfig` on top, as
 * `<Class>.from_config(pipeline.scheduler.config, **schedulerConfig)` does.
 */
export const schedulerClasses = {
  ddpm: "DDPMScheduler",
  ddim: "DDIMScheduler",
  euler: "EulerDiscreteScheduler",
  euler_ancestral: "EulerAncestralDiscreteScheduler",
  heun: "HeunDiscreteScheduler",
  dpmsolver_multistep: "DPMSolverMultistepScheduler",
  unipc_multistep: "UniPCMultistepScheduler"
} as const
export type Sampler = keyof typeof schedulerClasses
export const samplerNames = Object.keys(schedulerClasses) as ReadonlyArray<Sampler>
export const Sampler = OneOf(...(samplerNames as [Sampler, ...Array<Sampler>]))

const all = samplerNames
const sigmaSpaced: ReadonlyArray<Sampler> = ["euler", "heun", "dpmsolver_multistep", "unipc_multistep"]
const multistep: ReadonlyArray<Sampler> = ["dpmsolver_multistep", "unipc_multistep"]

/**
 * The diffusers scheduler config keys a declaration may set, the values sardine runs, and the samplers
 * whose class reads each (a key another class would ignore is refused, not ignored).
 */
const schedulerOptions = {
  timestep_spacing: { schema: OneOf("linspace", "leading", "trailing"), readBy: all },
  steps_offset: { schema: IntegerAtLeast(0), readBy: all },
  prediction_type: { schema: OneOf("epsilon", "v_prediction"), readBy: all },
  rescale_betas_zero_snr: { schema: Bool, readBy: all.filter((s) => s !== "heun") },
  use_karras_sigmas: { schema: Bool, readBy: sigmaSpaced },
  use_exponential_sigmas: { schema: Bool, readBy: sigmaSpaced },
  sigma_min: { schema: numberWhere("a number > 0", (n) => Number.isFinite(n) && n > 0), readBy: sigmaSpaced },
  sigma_max: { schema: numberWhere("a number > 0", (n) => Number.isFinite(n) && n > 0), readBy: sigmaSpaced },
  final_sigmas_type: { schema: OneOf("zero", "sigma_min"), readBy: ["euler", ...multistep] },
  clip_sample: { schema: Bool, readBy: ["ddpm", "ddim", "heun"] },
  clip_sample_range: { schema: numberWhere("a number > 0", (n) => Number.isFinite(n) && n > 0), readBy: ["ddpm", "ddim", "heun"] },
  set_alpha_to_one: { schema: Bool, readBy: ["ddim"] },
  variance_type: { schema: OneOf("fixed_small", "fixed_large"), readBy: ["ddpm"] },
  solver_order: { schema: numberWhere("1, 2 or 3", (n) => n === 1 || n === 2 || n === 3), readBy: multistep },
  lower_order_final: { schema: Bool, readBy: multistep },
  algorithm_type: { schema: OneOf("dpmsolver++", "sde-dpmsolver++"), readBy: ["dpmsolver_multistep"] },
  solver_type: { schema: OneOf("midpoint", "heun", "bh1", "bh2"), readBy: multistep },
  euler_at_final: { schema: Bool, readBy: ["dpmsolver_multistep"] },
  predict_x0: { schema: Bool, readBy: ["unipc_multistep"] },
  disable_corrector: { schema: Schema.Array(IntegerAtLeast(0)), readBy: ["unipc_multistep"] }
} as const

type SchedulerOptions = typeof schedulerOptions
/** Unknown keys are refused (diffusers would ignore them), the error listing the known ones. */
export const SchedulerConfig = Schema.Struct(
  Object.fromEntries(Object.entries(schedulerOptions).map(([key, o]) => [key, Schema.optionalWith(o.schema, { exact: true })])) as {
    [K in keyof SchedulerOptions]: Schema.optionalWith<SchedulerOptions[K]["schema"], { exact: true }>
  }
).annotations({ parseOptions: { onExcessProperty: "error" } })
export type SchedulerConfig = typeof SchedulerConfig.Type

/** The declared options `sampler` does not read, as issues relative to the generation. */
const schedulerConfigIssue = (sampler: Sampler, config: SchedulerConfig | undefined) => {
  if (config === undefined) return undefined
  for (const [key, value] of Object.entries(config)) {
    const option = schedulerOptions[key as keyof SchedulerOptions]
    if (!(option.readBy as ReadonlyArray<Sampler>).includes(sampler)) {
      const readers = option.readBy.map((s) => `${s} (${schedulerClasses[s]})`).join(", ")
      return { path: ["schedulerConfig", key], message: `is read only by ${readers}, not by ${sampler} (${schedulerClasses[sampler]})` }
    }
    if (key === "solver_type") {
      const allowed = sampler === "dpmsolver_multistep" ? ["midpoint", "heun"] : ["bh1", "bh2"]
      if (!allowed.includes(value as string)) {
        return {
          path: ["schedulerConfig", key],
          message: `must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")} for ${sampler} (got ${JSON.stringify(value)})`
        }
      }
    }
  }
  if (config.use_karras_sigmas === true && config.use_exponential_sigmas === true) {
    return { path: ["schedulerConfig", "use_exponential_sigmas"], message: "cannot be true together with use_karras_sigmas" }
  }
  return undefined
}

export const Generation = Schema.Struct({
  /** Plain strings are "seen" prompts. Required unless `conditions` gives the scenes (and their captions). */
  prompts: Schema.optionalWith(
    Schema.Array(Schema.Union(Prompt, NonEmptyString)).pipe(Schema.filter((prompts) => prompts.length > 0 || "must list at least one prompt")),
    { exact: true }
  ),
  /**
   * The conditioning scenes of a conditioned experiment (its `conditioning` reads their conditioning images):
   * each scene is sampled with its own caption, and each sample is compared with the scene's true image.
   */
  conditions: Schema.optionalWith(Dataset, { exact: true }),
  /**
   * What classifier-free guidance steers away from, for every prompt without its own. Absent is
   * diffusers' `negative_prompt=None`: the empty prompt, or zero embeddings on SDXL pipelines with
   * `force_zeros_for_empty_prompt`; "" encodes the empty prompt on every pipeline.
   */
  negativePrompt: Schema.optionalWith(Schema.String, { exact: true }),
  /** Noise seeds; each prompt is sampled `samplesPerPrompt` times per seed. */
  seeds: Schema.optionalWith(Schema.Array(Seed), { exact: true, default: () => [0] }),
  samplesPerPrompt: Schema.optionalWith(IntegerAtLeast(1), { exact: true, default: () => 1 }),
  sampler: Schema.optionalWith(Sampler, { exact: true, default: () => "euler" as const }),
  /** diffusers scheduler config keys set on top of the pipeline's scheduler_config.json (Karras σ, spacing, solver order…). */
  schedulerConfig: Schema.optionalWith(SchedulerConfig, { exact: true }),
  steps: Schema.optionalWith(IntegerAtLeast(1), { exact: true, default: () => 30 }),
  guidanceScale: Schema.optionalWith(NonNegativeNumber, { exact: true, default: () => 7.5 }),
  /** DDIM η (0 = deterministic DDIM). */
  eta: Schema.optionalWith(ClosedFraction, { exact: true, default: () => 0 }),
  /** Image side in pixels; the training data's resolution when absent. */
  resolution: Schema.optionalWith(IntegerAtLeast(8), { exact: true }),
  /** Sample with the EMA weights when training kept them. */
  useEma: Schema.optionalWith(Schema.Boolean, { exact: true, default: () => true })
}).pipe(Schema.filter((g) => schedulerConfigIssue(g.sampler, g.schedulerConfig) ?? true))
export type Generation = typeof Generation.Type
export type GenerationInput = typeof Generation.Encoded

/** Every declared prompt as an object (none when the scenes of `conditions` bring their captions). */
export const promptsOf = (generation: Generation): ReadonlyArray<Prompt> =>
  (generation.prompts ?? []).map((p) => (typeof p === "string" ? { text: p, split: "seen" as const } : p))

/** The negative prompt of a prompt: its own, else the generation's; undefined is diffusers' None. */
export const negativePromptOf = (generation: Generation, prompt: Prompt): string | undefined => prompt.negativePrompt ?? generation.negativePrompt
