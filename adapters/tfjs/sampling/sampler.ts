import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import type { Sampler as SamplerName, SchedulerConfig } from "../../../framework/declaration/generation.ts"
import { ModelConfigError } from "../model-config.ts"
import { DdimConfig, ddimScheduler, decodeDdimConfig } from "../schedulers/ddim.ts"
import { DdpmConfig, ddpmScheduler, decodeDdpmConfig } from "../schedulers/ddpm.ts"
import type { DiffusionScheduler, NoiseDraw } from "../schedulers/diffusion-scheduler.ts"
import { decodeDpmSolverMultistepConfig, DpmSolverMultistepConfig, dpmSolverMultistepScheduler } from "../schedulers/dpm-solver-multistep.ts"
import { decodeEulerAncestralConfig, EulerAncestralConfig, eulerAncestralScheduler } from "../schedulers/euler-ancestral.ts"
import { decodeEulerConfig, EulerConfig, eulerScheduler } from "../schedulers/euler.ts"
import { decodeHeunConfig, HeunConfig, heunScheduler } from "../schedulers/heun.ts"
import { decodeUniPcMultistepConfig, UniPcMultistepConfig, uniPcMultistepScheduler } from "../schedulers/unipc-multistep.ts"

/**
 * The model as a sampler sees it: the (guided) prediction, in the model's prediction type, for the
 * scaled latents at a timestep. It must not dispose its input.
 */
export type Denoiser = (modelInput: tf.Tensor4D, timestep: number) => tf.Tensor4D

/**
 * One signature for every sampler (as in k-diffusion), so the sampler is a parameter, not a code path:
 * from the initial unit Gaussian noise to the final latents. `noise` feeds the stochastic steps;
 * `onStep(done, total)` is called after each step. The result is the only tensor left behind.
 */
export type Sampler = (
  denoise: Denoiser,
  initialNoise: tf.Tensor4D,
  noise: NoiseDraw,
  onStep?: (done: number, total: number) => void
) => tf.Tensor4D

/** The loop of diffusers' pipelines: scale the input, predict, step; a fresh scheduler run per sample. */
export const samplerOf = (scheduler: DiffusionScheduler): Sampler => (denoise, initialNoise, noise, onStep) => {
  let latents = tf.tidy(() => tf.mul(initialNoise, scheduler.initNoiseSigma)) as tf.Tensor4D
  const total = scheduler.timesteps.length
  const run = scheduler.start()
  try {
    scheduler.timesteps.forEach((t, i) => {
      const next = tf.tidy(() => run.step(denoise(scheduler.scaleModelInput(latents, i), t), i, latents, noise))
      latents.dispose()
      latents = next
      onStep?.(i + 1, total)
    })
  } finally {
    run.dispose()
  }
  return latents
}

export interface SamplerSettings {
  readonly sampler: SamplerName
  readonly steps: number
  /** DDIM's η; ignored by the other samplers. */
  readonly eta: number
  /** Declared scheduler config keys, set on top of the pipeline's. */
  readonly schedulerConfig?: SchedulerConfig | undefined
}

/** Each sampler's config schema: every key its diffusers class takes, implemented or refused. */
export const schedulerConfigSchemas: Record<SamplerName, { readonly fields: Readonly<Record<string, unknown>> }> = {
  ddpm: DdpmConfig,
  ddim: DdimConfig,
  euler: EulerConfig,
  euler_ancestral: EulerAncestralConfig,
  heun: HeunConfig,
  dpmsolver_multistep: DpmSolverMultistepConfig,
  unipc_multistep: UniPcMultistepConfig
}

/**
 * The declared sampler's scheduler on a pipeline's `scheduler_config.json` (parsed; `file` names it in
 * errors), read as diffusers' `<Scheduler>.from_config(pipeline config, **schedulerConfig)` reads it.
 */
export const makeScheduler = (settings: SamplerSettings, pipelineConfig: unknown, file: string): Effect.Effect<DiffusionScheduler, ModelConfigError> => {
  const config = { ...(pipelineConfig as Record<string, unknown>), ...settings.schedulerConfig }
  // The scheduler refuses more steps than the model was trained with; that is reported on the config.
  const build = <C>(decoded: Effect.Effect<C, ModelConfigError>, make: (config: C) => DiffusionScheduler) =>
    Effect.flatMap(decoded, (c) => Effect.try({ try: () => make(c), catch: (error) => new ModelConfigError({ file, reason: (error as Error).message }) }))
  const schedulers: Record<SamplerName, () => Effect.Effect<DiffusionScheduler, ModelConfigError>> = {
    ddpm: () => build(decodeDdpmConfig(config, file), (c) => ddpmScheduler(c, settings.steps)),
    ddim: () => build(decodeDdimConfig(config, file), (c) => ddimScheduler(c, settings.steps, settings.eta)),
    euler: () => build(decodeEulerConfig(config, file), (c) => eulerScheduler(c, settings.steps)),
    euler_ancestral: () => build(decodeEulerAncestralConfig(config, file), (c) => eulerAncestralScheduler(c, settings.steps)),
    heun: () => build(decodeHeunConfig(config, file), (c) => heunScheduler(c, settings.steps)),
    dpmsolver_multistep: () => build(decodeDpmSolverMultistepConfig(config, file), (c) => dpmSolverMultistepScheduler(c, settings.steps)),
    unipc_multistep: () => build(decodeUniPcMultistepConfig(config, file), (c) => uniPcMultistepScheduler(c, settings.steps))
  }
  return schedulers[settings.sampler]()
}

/** The declared sampler (see `makeScheduler`) as the sampling loop. */
export const makeSampler = (settings: SamplerSettings, pipelineConfig: unknown, file: string): Effect.Effect<Sampler, ModelConfigError> =>
  Effect.map(makeScheduler(settings, pipelineConfig, file), samplerOf)
