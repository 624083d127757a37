import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Sampler as SamplerName } from "../../framework/declaration/generation.ts"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { layersOf } from "../../adapters/tfjs/layers.ts"
import { disposePipeline, loadPipeline, type StableDiffusionPipeline } from "../../adapters/tfjs/pipeline-loader.ts"
import { drawNoise, gaussianStream } from "../../adapters/tfjs/sampling/gaussian-noise.ts"
import { guidedDenoiser } from "../../adapters/tfjs/sampling/guidance.ts"
import { parsePythonJson } from "../../adapters/tfjs/model-config.ts"
import { makeSampler, makeScheduler } from "../../adapters/tfjs/sampling/sampler.ts"
import { spacedTimesteps } from "../../adapters/tfjs/schedulers/timestep-spacing.ts"
import { expectClose, get, readReference, type ReferenceTensor } from "../models/reference.ts"

const FIXTURES = "test/fixtures/sampling"

interface SpacingGolden {
  readonly sampler: SamplerName
  readonly spacing: "linspace" | "leading" | "trailing"
  readonly sigmaSpacing: "timesteps" | "karras" | "exponential"
  readonly zeroSnr: boolean
  readonly steps: number
  readonly timesteps: ReadonlyArray<number>
  readonly sigmas?: ReadonlyArray<number>
  readonly initNoiseSigma?: number
}
interface SchedulerCase {
  readonly name: string
  readonly sampler: SamplerName
  readonly config: Record<string, unknown>
  readonly steps: number
  readonly eta: number
  readonly seed: number
}
interface Goldens {
  readonly baseConfig: Record<string, unknown>
  readonly spacing: ReadonlyArray<SpacingGolden>
  readonly schedulerCases: ReadonlyArray<SchedulerCase>
}
const goldens = JSON.parse(readFileSync(`${FIXTURES}/goldens.json`, "utf8")) as Goldens

const configOf = (g: SpacingGolden) => ({
  ...goldens.baseConfig,
  timestep_spacing: g.spacing,
  rescale_betas_zero_snr: g.zeroSnr,
  ...(g.sigmaSpacing === "timesteps" ? {} : { [`use_${g.sigmaSpacing}_sigmas`]: true })
})

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runSync(effect)

describe("set_timesteps as diffusers computes it", () => {
  const label = (g: SpacingGolden) =>
    `${g.sampler} ${g.spacing}${g.sigmaSpacing === "timesteps" ? "" : ` ${g.sigmaSpacing} σ`}${g.zeroSnr ? " zero-SNR" : ""} ${g.steps} steps`
  it.each(goldens.spacing.map((g) => [label(g), g] as const))("%s", (_, g) => {
    const scheduler = run(makeScheduler({ sampler: g.sampler, steps: g.steps, eta: 0 }, configOf(g), "scheduler_config.json")) as {
      readonly timesteps: ReadonlyArray<number>
      readonly sigmas?: Float32Array
      readonly initNoiseSigma: number
    }
    if (g.sigmaSpacing === "timesteps" || ["dpmsolver_multistep", "unipc_multistep"].includes(g.sampler)) {
      expect(scheduler.timesteps).toEqual(g.timesteps)
    } else {
      // Fractional timesteps of respaced σ interpolate between float32 log σ one training step apart; numpy's
      // float32 log and sardine's differ by an ulp (2.4e-7 at log σ ≈ −3), which the interpolation weight
      // divides by the log σ gap (≈ 0.05 at the low end): 1e-5 of a timestep, plus the float32 rounding of t.
      expect(scheduler.timesteps).toHaveLength(g.timesteps.length)
      g.timesteps.forEach((t, i) => expect(Math.abs(scheduler.timesteps[i]! - t), `timestep ${i}`).toBeLessThanOrEqual(1e-5 + 1.2e-7 * t))
    }
    if (g.sigmas === undefined) return
    // σ and the initial noise scale to float32 precision. Rescaled to zero terminal SNR, the last ᾱ are
    // differences of nearly equal float32 numbers, reproduced to a few ulps only: σ there to 1e-6.
    const tolerance = g.zeroSnr ? 1e-6 : 2e-7
    expect(scheduler.sigmas!.length).toBe(g.sigmas.length)
    g.sigmas.forEach((sigma, i) => expect(Math.abs(scheduler.sigmas![i]! - sigma), `σ ${i}`).toBeLessThanOrEqual(tolerance * Math.max(sigma, 1)))
    expect(Math.abs(scheduler.initNoiseSigma - g.initNoiseSigma!)).toBeLessThanOrEqual(tolerance * g.initNoiseSigma!)
  })

  it("rejects step counts the schedule cannot give", () => {
    const config = { num_train_timesteps: 1000, timestep_spacing: "leading" as const, steps_offset: 0 }
    expect(() => spacedTimesteps(config, 0, "integer")).toThrow(/0 inference steps/)
    expect(() => spacedTimesteps(config, 1001, "integer")).toThrow(/num_train_timesteps \(1000\)/)
  })
})

describe("scheduler configs sardine cannot run are refused by field", () => {
  const failure = (sampler: SamplerName, overrides: Record<string, unknown>, steps = 10) =>
    Effect.runSync(Effect.flip(makeSampler({ sampler, steps, eta: 0 }, { ...goldens.baseConfig, ...overrides }, "unet-base/scheduler/scheduler_config.json")))

  it.each(
    [
      ["euler", { use_beta_sigmas: true }, /use_beta_sigmas: sardine supports only false \(the beta sigma schedule needs scipy's beta quantiles\)/],
      ["heun", { use_karras_sigmas: true, use_exponential_sigmas: true }, /use_karras_sigmas and use_exponential_sigmas: only one of them can be true/],
      ["euler", { interpolation_type: "log_linear" }, /interpolation_type: sardine supports only "linear"/],
      ["dpmsolver_multistep", { algorithm_type: "dpmsolver" }, /algorithm_type: sardine supports only "dpmsolver\+\+" and "sde-dpmsolver\+\+"/],
      ["dpmsolver_multistep", { use_flow_sigmas: true }, /use_flow_sigmas: sardine supports only false \(flow-matching models\)/],
      ["dpmsolver_multistep", { solver_order: 4 }, /solver_order: sardine supports only 1, 2 and 3/],
      ["unipc_multistep", { solver_type: "bh1" }, /final_sigmas_type "zero" needs solver_type "bh2" and lower_order_final true/],
      ["unipc_multistep", { lower_order_final: false }, /set final_sigmas_type to "sigma_min"/],
      ["euler", { timestep_type: "continuous" }, /timestep_type: sardine supports only "discrete"/],
      ["ddpm", { variance_type: "learned_range" }, /variance_type: sardine supports only "fixed_small" and "fixed_large"/],
      ["ddim", { thresholding: true }, /thresholding: sardine supports only false/],
      ["ddim", { prediction_type: "sample" }, /prediction_type: sardine supports only "epsilon" and "v_prediction"/],
      ["ddpm", { beta_schedule: "sigmoid" }, /beta_schedule: sardine supports only/],
      ["euler", { timestep_spacing: "uniform" }, /timestep_spacing: sardine supports only "linspace", "leading" and "trailing"/]
    ] as const
  )("%s with %j", (sampler, overrides, message) => {
    const error = failure(sampler, overrides)
    expect(error._tag).toBe("ModelConfigError")
    expect(error.message).toMatch(/^unet-base\/scheduler\/scheduler_config.json: /)
    expect(error.message).toMatch(message)
  })

  it("more steps than training timesteps", () => {
    expect(failure("ddim", {}, 2000).message).toMatch(/2000 inference steps: must be an integer from 1 to num_train_timesteps \(1000\)/)
    expect(failure("unipc_multistep", {}, 1001).message).toMatch(/1001 inference steps/)
  })

  it("reads the configs other schedulers saved, as the classes' constructors convert them", () => {
    // DPMSolverMultistepScheduler.save_config writes lambda_min_clipped as -Infinity; UniPC turns "midpoint" into "bh2".
    const saved = parsePythonJson(`{"solver_type": "midpoint", "lambda_min_clipped": -Infinity, "algorithm_type": "deis"}`) as Record<string, unknown>
    expect(saved.lambda_min_clipped).toBe(-Infinity)
    const config = { ...goldens.baseConfig, ...saved }
    expect(run(makeScheduler({ sampler: "unipc_multistep", steps: 5, eta: 0 }, config, "f")).timesteps).toHaveLength(5)
    expect(run(makeScheduler({ sampler: "dpmsolver_multistep", steps: 5, eta: 0 }, config, "f")).timesteps).toHaveLength(5)
    expect(parsePythonJson(`{"a": "NaN -Infinity", "b": NaN}`)).toEqual({ a: "NaN -Infinity", b: NaN })
  })
})

describe.each(["cpu", "wasm"])("samplers reproduce diffusers' schedulers on the SD-1-like UNet, %s backend", (backend) => {
  let pipeline: StableDiffusionPipeline
  let reference: Map<string, ReferenceTensor>
  let embeds: tf.Tensor3D

  beforeAll(async () => {
    await Effect.runPromise(selectBackend(backend))
    pipeline = await Effect.runPromise(loadPipeline("test/fixtures/pipelines/sd1-tiny"))
    reference = await readReference(`${FIXTURES}/goldens.safetensors`)
    const e = get(reference, "scheduler.prompt_embeds")
    embeds = tf.tensor3d(e.data as Float32Array, e.shape as [number, number, number])
  })
  afterAll(() => {
    embeds.dispose()
    disposePipeline(pipeline)
  })

  it.each(goldens.schedulerCases.map((c) => [c.name, c] as const))("%s", (_, c) => {
    // The case's config is the pipeline's with its overrides: declared here as the pipeline's own.
    const sampler = run(makeSampler({ sampler: c.sampler, steps: c.steps, eta: c.eta }, c.config, c.name))
    const unet = { plan: pipeline.unet.plan, layers: layersOf(pipeline.unet.parameters) }
    const denoise = guidedDenoiser(unet, { context: embeds, guided: false }, 1)
    const stream = gaussianStream(c.seed, 0)
    const initial = drawNoise(stream, [1, 8, 8, 4])
    const before = tf.memory().numTensors
    const counts: Array<number> = []
    const latents = sampler(denoise, initial, (shape) => drawNoise(stream, shape), () => counts.push(tf.memory().numTensors))
    // Between steps: the latents and what the solver remembers (at most its order's outputs and one
    // sample), never more as the steps go on; the result alone after.
    expect(counts).toHaveLength(c.steps * (c.sampler === "heun" ? 2 : 1) - (c.sampler === "heun" ? 1 : 0))
    expect(Math.max(...counts)).toBeLessThanOrEqual(before + 5)
    expect(counts.slice(-1)[0]).toBeLessThanOrEqual(counts[0]! + 4)
    expect(tf.memory().numTensors).toBe(before + 1)
    expectClose(latents, get(reference, `${c.name}.latents`), `${c.name} latents`, "nhwc")
    tf.dispose([initial, latents])
  })
})
