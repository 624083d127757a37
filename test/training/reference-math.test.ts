import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { addNoise, noiseSchedule, NoiseScheduleConfig, signalToNoise, velocity } from "../../adapters/tfjs/schedulers/noise-schedule.ts"
import { adamwStep, disposeAdamW, type AdamWState } from "../../adapters/tfjs/training/adamw.ts"
import { minSnrWeights } from "../../adapters/tfjs/training/diffusion-loss.ts"
import { disposeEma, emaDecay, startEma, updateEma } from "../../adapters/tfjs/training/exponential-moving-average.ts"
import { clipFactor, globalNorm } from "../../adapters/tfjs/training/gradient-norm.ts"
import { learningRateFactor } from "../../adapters/tfjs/training/learning-rate.ts"
import { openSafetensors } from "../../adapters/safetensors/safetensors-reader.ts"
import { get, readReference, type ReferenceTensor } from "../models/reference.ts"

/** The forward process and the optimiser pieces against diffusers / torch / transformers (tools/make_training_goldens.py). */

const REFERENCE = "test/fixtures/training/reference.safetensors"

const scheduleOf = (config: object) => noiseSchedule(Schema.decodeUnknownSync(NoiseScheduleConfig)(config))

const maxRelativeError = (actual: ArrayLike<number>, expected: ArrayLike<number>) => {
  let scale = 0
  let worst = 0
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]!))
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!))
  }
  return worst / scale
}

describe("training math against the reference libraries", () => {
  let reference: Map<string, ReferenceTensor>
  let settings: {
    steps: number
    warmup: number
    betas: [number, number]
    eps: number
    max_norm: number
    ema_decay: number
    groups: Array<{ lr: number; weight_decay: number }>
  }
  beforeAll(async () => {
    await Effect.runPromise(selectBackend("cpu"))
    reference = await readReference(REFERENCE)
    settings = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const reader = yield* openSafetensors(REFERENCE)
      return JSON.parse(reader.header.metadata.adamw!)
    })))
  })

  it.each([
    ["linear", { beta_schedule: "linear", beta_start: 0.0001, beta_end: 0.02 }],
    ["scaled_linear", { beta_schedule: "scaled_linear", beta_start: 0.00085, beta_end: 0.012 }],
    ["squaredcos_cap_v2", { beta_schedule: "squaredcos_cap_v2" }]
  ])("ᾱ of the %s schedule equals DDPMScheduler's float32 values bit for bit", (kind, config) => {
    expect(Array.from(scheduleOf(config).alphasCumprod)).toEqual(Array.from(get(reference, `schedule.${kind}.alphas_cumprod`).data))
  })

  it("zero-terminal-SNR rescaling equals DDPMScheduler's to within float32 rounding", () => {
    const ours = scheduleOf({ beta_schedule: "scaled_linear", beta_start: 0.00085, beta_end: 0.012, rescale_betas_zero_snr: true }).alphasCumprod
    const theirs = get(reference, "schedule.zero_snr.alphas_cumprod").data
    expect(theirs[999]).toBe(0)
    expect(ours[999]).toBe(0)
    expect(maxRelativeError(ours, theirs)).toBeLessThan(1e-6)
  })

  it("add_noise, get_velocity, compute_snr and the min-SNR-γ weights equal diffusers'", () => {
    const schedule = scheduleOf({ beta_schedule: "scaled_linear", beta_start: 0.00085, beta_end: 0.012 })
    const x0 = get(reference, "forward.x0")
    const noise = get(reference, "forward.noise")
    const timesteps = Array.from(get(reference, "forward.timesteps").data)
    const a = tf.tensor(x0.data as Float32Array, x0.shape.slice())
    const n = tf.tensor(noise.data as Float32Array, noise.shape.slice())
    const noisy = addNoise(schedule, a, n, timesteps)
    const v = velocity(schedule, a, n, timesteps)
    expect(maxRelativeError(noisy.dataSync(), get(reference, "forward.noisy").data)).toBeLessThan(1e-6)
    expect(maxRelativeError(v.dataSync(), get(reference, "forward.velocity").data)).toBeLessThan(1e-6)
    tf.dispose([a, n, noisy, v])
    expect(maxRelativeError(timesteps.map((t) => signalToNoise(schedule, t)), get(reference, "forward.snr").data)).toBeLessThan(1e-6)
    expect(maxRelativeError(minSnrWeights(schedule, timesteps, 5), get(reference, "forward.min_snr_epsilon").data)).toBeLessThan(1e-6)
    const vSchedule = { ...schedule, predictionType: "v_prediction" as const }
    expect(maxRelativeError(minSnrWeights(vSchedule, timesteps, 5), get(reference, "forward.min_snr_v").data)).toBeLessThan(1e-6)
  })

  it("AdamW (two groups, decoupled decay), global-norm clipping, cosine warm-up and EMA follow torch / transformers / diffusers step by step", () => {
    const tensor = (name: string) => {
      const t = get(reference, name)
      return tf.tensor(t.data as Float32Array, t.shape.slice())
    }
    const p1 = tf.variable(tensor("adamw.initial.p1"))
    const p2 = tf.variable(tensor("adamw.initial.p2"))
    const params = [{ name: "p1", variable: p1 }, { name: "p2", variable: p2 }]
    const state: AdamWState = new Map()
    const ema = startEma(params)
    const lrs = get(reference, "adamw.lrs").data
    const norms = get(reference, "adamw.norms").data
    const schedule = { warmupSteps: settings.warmup, decay: "cosine" as const }
    for (let step = 0; step < settings.steps; step++) {
      const grads = [tensor(`adamw.gradient.${step}.p1`), tensor(`adamw.gradient.${step}.p2`)]
      const norm = globalNorm(grads)
      expect(Math.abs(norm - norms[step]!) / norms[step]!, `norm at step ${step}`).toBeLessThan(1e-6)
      const clip = clipFactor(norm, settings.max_norm)
      const factor = learningRateFactor(schedule, step, settings.steps)
      settings.groups.forEach((g, i) => expect(Math.abs(g.lr * factor - lrs[step * 2 + i]!)).toBeLessThanOrEqual(1e-7 * g.lr))
      const clipped = grads.map((g) => tf.mul(g, clip))
      adamwStep(
        params.map((p, i) => ({
          ...p,
          gradient: clipped[i]!,
          lr: settings.groups[i]!.lr * factor,
          weightDecay: settings.groups[i]!.weight_decay
        })),
        state,
        { beta1: settings.betas[0], beta2: settings.betas[1], epsilon: settings.eps }
      )
      updateEma(ema, params, emaDecay(settings.ema_decay, step + 1))
      tf.dispose([...grads, ...clipped])
      for (const p of params) {
        expect(maxRelativeError(p.variable.dataSync(), get(reference, `adamw.after.${step}.${p.name}`).data), `${p.name} after step ${step}`).toBeLessThan(1e-5)
        expect(maxRelativeError(ema.get(p.name)!.dataSync(), get(reference, `adamw.ema.${step}.${p.name}`).data), `EMA of ${p.name} after step ${step}`)
          .toBeLessThan(1e-5)
      }
    }
    // Clipping acted on some steps and not on others, so both paths were compared.
    expect(Array.from(norms).some((n) => n > settings.max_norm) && Array.from(norms).some((n) => n < settings.max_norm)).toBe(true)
    disposeAdamW(state)
    disposeEma(ema)
    tf.dispose([p1, p2])
  })
})
