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
import { makeSampler } from "../../adapters/tfjs/sampling/sampler.ts"
import { decodeEulerConfig, eulerScheduler } from "../../adapters/tfjs/schedulers/euler.ts"
import { spacedTimesteps } from "../../adapters/tfjs/schedulers/timestep-spacing.ts"
import { expectClose, get, readReference, type ReferenceTensor } from "../models/reference.ts"

const FIXTURES = "test/fixtures/sampling"

interface SpacingGolden {
  readonly sampler: SamplerName
  readonly spacing: "linspace" | "leading" | "trailing"
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

const configOf = (g: SpacingGolden) => ({ ...goldens.baseConfig, timestep_spacing: g.spacing, rescale_betas_zero_snr: g.zeroSnr })

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runSync(effect)

describe("set_timesteps as diffusers computes it", () => {
  it.each(goldens.spacing.map((g) => [`${g.sampler} ${g.spacing}${g.zeroSnr ? " zero-SNR" : ""} ${g.steps} steps`, g] as const))(
    "%s",
    (_, g) => {
      const config = { num_train_timesteps: 1000, timestep_spacing: g.spacing, steps_offset: 1 }
      expect(spacedTimesteps(config, g.steps, g.sampler === "euler" ? "float32" : "integer")).toEqual(g.timesteps)
      if (g.sampler !== "euler") return
      const scheduler = eulerScheduler(run(decodeEulerConfig(configOf(g), "scheduler_config.json")), g.steps)
      expect(scheduler.timesteps).toEqual(g.timesteps)
      // σ and the initial noise scale to float32 precision. Rescaled to zero terminal SNR, the last ᾱ are
      // differences of nearly equal float32 numbers, reproduced to a few ulps only: σ there to 1e-6.
      const tolerance = g.zeroSnr ? 1e-6 : 2e-7
      expect(scheduler.sigmas.length).toBe(g.sigmas!.length)
      g.sigmas!.forEach((sigma, i) => expect(Math.abs(scheduler.sigmas[i] - sigma), `σ ${i}`).toBeLessThanOrEqual(tolerance * Math.max(sigma, 1)))
      expect(Math.abs(scheduler.initNoiseSigma - g.initNoiseSigma!)).toBeLessThanOrEqual(tolerance * g.initNoiseSigma!)
    }
  )

  it("rejects step counts the schedule cannot give", () => {
    const config = { num_train_timesteps: 1000, timestep_spacing: "leading" as const, steps_offset: 0 }
    expect(() => spacedTimesteps(config, 0, "integer")).toThrow(/0 inference steps/)
    expect(() => spacedTimesteps(config, 1001, "integer")).toThrow(/num_train_timesteps \(1000\)/)
  })
})

describe("scheduler configs sardine cannot run are refused by field", () => {
  const failure = (sampler: SamplerName, overrides: Record<string, unknown>, steps = 10) =>
    Effect.runSync(Effect.flip(makeSampler({ sampler, steps, eta: 0 }, { ...goldens.baseConfig, ...overrides }, "unet-base/scheduler/scheduler_config.json")))

  it.each([
    ["euler", { use_karras_sigmas: true }, /use_karras_sigmas: sardine supports only false/],
    ["euler", { timestep_type: "continuous" }, /timestep_type: sardine supports only "discrete"/],
    ["ddpm", { variance_type: "learned_range" }, /variance_type: sardine supports only "fixed_small" and "fixed_large"/],
    ["ddim", { thresholding: true }, /thresholding: sardine supports only false/],
    ["ddim", { prediction_type: "sample" }, /prediction_type: sardine supports only "epsilon" and "v_prediction"/],
    ["ddpm", { beta_schedule: "sigmoid" }, /beta_schedule: sardine supports only/],
    ["euler", { timestep_spacing: "uniform" }, /timestep_spacing: sardine supports only "linspace", "leading" and "trailing"/]
  ] as const)("%s with %j", (sampler, overrides, message) => {
    const error = failure(sampler, overrides)
    expect(error._tag).toBe("ModelConfigError")
    expect(error.message).toMatch(/^unet-base\/scheduler\/scheduler_config.json: /)
    expect(error.message).toMatch(message)
  })

  it("more steps than training timesteps", () => {
    expect(failure("ddim", {}, 2000).message).toMatch(/2000 inference steps: must be an integer from 1 to num_train_timesteps \(1000\)/)
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
    const sampler = run(makeSampler({ sampler: c.sampler, steps: c.steps, eta: c.eta }, c.config, c.name))
    const unet = { plan: pipeline.unet.plan, layers: layersOf(pipeline.unet.parameters) }
    const denoise = guidedDenoiser(unet, { context: embeds, guided: false }, 1)
    const stream = gaussianStream(c.seed, 0)
    const initial = drawNoise(stream, [1, 8, 8, 4])
    const before = tf.memory().numTensors
    const counts: Array<number> = []
    const latents = sampler(denoise, initial, (shape) => drawNoise(stream, shape), () => counts.push(tf.memory().numTensors))
    // One tensor (the latents) alive between steps, the result alone after.
    expect(counts).toEqual(Array.from({ length: counts.length }, () => before + 1))
    expect(tf.memory().numTensors).toBe(before + 1)
    expectClose(latents, get(reference, `${c.name}.latents`), `${c.name} latents`, "nhwc")
    tf.dispose([initial, latents])
  })
})
