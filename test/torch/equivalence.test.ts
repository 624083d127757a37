import { Effect, Layer, Schema } from "effect"
import { readFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { engineLayer } from "../../adapters/tfjs/engine-live.ts"
import type { StepRecord } from "../../adapters/tfjs/training/training-checkpoint.ts"
import { resolveAdaptation } from "../../framework/declaration/adaptation.ts"
import { trainingMetrics } from "../../framework/metrics/metric-catalog.ts"
import { BaseModel, diffusers } from "../../framework/declaration/base-model.ts"
import { synthetic } from "../../framework/declaration/dataset.ts"
import { Generation, type GenerationInput } from "../../framework/declaration/generation.ts"
import { Engine, type GenerateRequest, type TrainRequest } from "../../framework/services/engine.ts"
import { prepareSyntheticData } from "../training/prepared-data.ts"
import { components, readWeights, temporaryFolder, training } from "../training/training-run.ts"
import { repoRoot } from "../support/run-process.ts"
import { tfjsStepZero, torchStepZero, type StepZero, type StepZeroCase } from "./step-gradients.ts"
import { generatedImages, runTorch } from "./torch-worker.ts"

/**
 * The torch engine computes what the tfjs engine computes, on experiments/demo/base (both engines draw the
 * batch, the caption dropout, the noise with its offset and the timesteps from sardine's streams):
 *   - step 0 of full UNet, LoRA (UNet and text encoder), learned-token and full-VAE training, and of an SDXL
 *     hybrid (tiny SDXL-like pipeline: both text encoders with LoRA and the token): the same starting
 *     trainables (LoRA A and token rows), loss and every gradient agree to 1e-4 relative;
 *   - ten steps of the hybrid (full UNet, LoRA text encoder, learned token), a quarter of the data held out:
 *     the loss curves, the held-out validation losses (from step 0) and the trained weights agree within the
 *     tolerance argued below; two steps measured on a held-out dataset of its own agree alike;
 *   - generation from the same noise agrees to 1e-3, for the base and for each engine's trained model read
 *     by the other engine.
 * Cost: ≈ 1–2 min on a quiet 2-core machine (four Python starts, twelve steps on each engine).
 */

const base = resolve(repoRoot, "experiments/demo/base")
const resolvedBase = { base: Schema.decodeUnknownSync(BaseModel)(diffusers(base, { family: "tiny" })), path: base }
/** Two text encoders (the second with projection), SDXL's added conditioning: the SDXL paths on a tiny pipeline. */
const sdxl = resolve(repoRoot, "test/fixtures/pipelines/sdxl-tiny")
const sdxlBase = { base: Schema.decodeUnknownSync(BaseModel)(diffusers(sdxl, { family: "sdxl" })), path: sdxl }
const BASES = { demo: resolvedBase, sdxl: sdxlBase }
const TRAIN = { steps: 10, batchSize: 4, seed: 3, captionDropout: 0.25, noiseOffset: 0.05, minSnrGamma: 5, checkpointEvery: 5 }
const quiet = { progress: () => Effect.void, log: () => Effect.void, metrics: () => Effect.void }

const tfjsLayer = engineLayer({ backend: "wasm" }).pipe(Layer.provide(ImageIOLive))
const onTfjs = <A, E>(effect: Effect.Effect<A, E, Engine>) => Effect.runPromise(Effect.provide(effect, tfjsLayer))
const onTorch = runTorch

const norm = (values: Float32Array) => Math.sqrt(values.reduce((s, v) => s + v * v, 0))
const distance = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0))
/** ‖a − b‖ / ‖b‖, 0 when both are zero. */
const relative = (a: Float32Array, b: Float32Array) => (norm(b) === 0 ? norm(a) : distance(a, b) / norm(b))

const worstOf = (names: Iterable<string>, error: (name: string) => number) =>
  [...names].reduce((worst, name) => {
    const e = error(name)
    return e > worst.error ? { name, error: e } : worst
  }, { name: "", error: 0 })

const STEP_ZERO: ReadonlyArray<readonly [string, Parameters<typeof components>[0], keyof typeof BASES]> = [
  ["full UNet", { unet: { _tag: "full", lr: 1e-3 } }, "demo"],
  ["LoRA UNet and text encoder", { unet: { _tag: "lora", rank: 4, alpha: 8, lr: 1e-3 }, textEncoders: { _tag: "lora", rank: 2, lr: 1e-3 } }, "demo"],
  ["learned token", { unet: { _tag: "frozen" }, token: { token: "<SAR>", init: "radar", vectors: 2, lr: 1e-2 } }, "demo"],
  ["full VAE", { unet: { _tag: "frozen" }, vae: { _tag: "full", lr: 1e-4 } }, "demo"],
  ["SDXL: full UNet, LoRA on both text encoders, the token in both", {
    unet: { _tag: "full", lr: 1e-3 },
    textEncoders: { textEncoder: { _tag: "lora", rank: 2, lr: 1e-3 }, textEncoder2: { _tag: "lora", rank: 3, alpha: 6, lr: 1e-3 } },
    token: { token: "<SAR>", init: "radar", vectors: 2, lr: 1e-2 }
  }, "sdxl"]
]

const HYBRID = components({
  unet: { _tag: "full", lr: 5e-4 },
  textEncoders: { _tag: "lora", rank: 4, alpha: 4, lr: 2e-3 },
  token: { token: "<SAR>", init: "radar", lr: 5e-3 }
})

const GENERATE: GenerationInput = {
  prompts: ["SAR image of farmland with crop fields crossed by a road", { text: "{token} image of a harbour with a ship", split: "unseen" }],
  seeds: [0, 5],
  steps: 8,
  guidanceScale: 4
}

describe("the torch engine against the tfjs engine", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  let dataDir: string
  let latentsDir: string
  let torchZero: Array<StepZero>
  const stepZeroCase = (declared: Parameters<typeof components>[0], on: keyof typeof BASES): StepZeroCase => ({
    base: BASES[on].path,
    family: BASES[on].base.family,
    components: components(declared),
    train: training(TRAIN),
    dataDir,
    latentsDir: `${latentsDir}-${on}`
  })
  beforeAll(async () => {
    folder = await temporaryFolder("torch-equivalence")
    dataDir = join(folder.dir, "data")
    latentsDir = join(folder.dir, "latents")
    await Effect.runPromise(prepareSyntheticData(dataDir, { n: 8, size: 32, seed: 21 }))
    // Both engines train from one latent cache, so that the comparison is of training alone.
    for (const [on, b] of Object.entries(BASES)) {
      await onTfjs(Effect.flatMap(Engine, (engine) => engine.encodeLatents({ base: b, dataDir, outDir: `${latentsDir}-${on}`, progress: () => Effect.void })))
    }
    torchZero = await torchStepZero(STEP_ZERO.map(([, declared, on]) => stepZeroCase(declared, on)), folder.dir)
  }, 600_000)
  afterAll(() => folder.remove())

  it.each(STEP_ZERO.map(([name], i) => [name, i] as const))("%s: the same start, step-0 loss and gradients to 1e-4 relative", async (name, i) => {
    const tfjs = await tfjsStepZero(stepZeroCase(STEP_ZERO[i]![1], STEP_ZERO[i]![2]))
    const torch = torchZero[i]!
    expect([...torch.initial.keys()].sort()).toEqual([...tfjs.initial.keys()].sort())
    const start = worstOf(tfjs.initial.keys(), (n) => relative(torch.initial.get(n)!, tfjs.initial.get(n)!))
    expect(start.error, `starting values of ${start.name}`).toBeLessThan(1e-6)
    expect(Math.abs(torch.loss - tfjs.loss) / tfjs.loss, `loss ${torch.loss} (torch) vs ${tfjs.loss} (tfjs)`).toBeLessThan(1e-4)
    expect([...torch.gradients.keys()].sort()).toEqual([...tfjs.gradients.keys()].sort())
    // A gradient that is zero in exact arithmetic (an attention key's bias: softmax ignores a shift shared by
    // a row) is float noise in both engines: each tensor is measured against at least 1e-4 of the whole
    // gradient's norm, below which float32 sums of that gradient's size cannot tell values apart anyway.
    const whole = Math.sqrt([...tfjs.gradients.values()].reduce((s, g) => s + norm(g) ** 2, 0))
    const gradient = worstOf(
      tfjs.gradients.keys(),
      (n) => distance(torch.gradients.get(n)!, tfjs.gradients.get(n)!) / Math.max(norm(tfjs.gradients.get(n)!), 1e-4 * whole)
    )
    expect(gradient.error, `gradient of ${gradient.name}`).toBeLessThan(1e-4)
    console.log(
      `${name}: loss ${tfjs.loss} (tfjs), ${torch.loss} (torch); worst start ${start.error.toExponential(1)} (${start.name}), ` +
        `worst gradient ${gradient.error.toExponential(1)} (${gradient.name})`
    )
  }, 600_000)

  describe("ten steps of the hybrid, and generation", () => {
    // Held out: 2 of the 8 samples, measured at 2 timesteps after steps 5 and 10.
    const validationLosses = { tfjs: new Map<number, number>(), torch: new Map<number, number>() }
    const train = (workDir: string, on: keyof typeof validationLosses): TrainRequest => ({
      base: resolvedBase,
      adaptation: resolveAdaptation(HYBRID, resolvedBase.base.family),
      train: training({ ...TRAIN, validationLoss: { fraction: 0.25, every: 5, timesteps: 2 } }),
      dataDir,
      latentsDir: `${latentsDir}-demo`,
      workDir,
      ...quiet,
      metrics: (step, values) =>
        Effect.sync(() => {
          const value = values[trainingMetrics.validationLoss]
          if (value !== undefined) validationLosses[on].set(step, value)
        })
    })
    const history = async (dir: string) => (JSON.parse(await readFile(join(dir, "training.json"), "utf8")) as { steps: Array<StepRecord> }).steps
    let tfjsModel: string
    let torchModel: string
    beforeAll(async () => {
      tfjsModel = join(folder.dir, "tfjs-hybrid")
      torchModel = join(folder.dir, "torch-hybrid")
      await onTfjs(Effect.flatMap(Engine, (engine) => engine.train(train(tfjsModel, "tfjs"))))
      await onTorch(Effect.flatMap(Engine, (engine) => engine.train(train(torchModel, "torch"))))
    }, 600_000)

    it("train alike: loss curves within 1e-3 relative, weights within 2 % of their updates", async () => {
      const [a, b] = [await history(tfjsModel), await history(torchModel)]
      expect(b.map((r) => r.step)).toEqual(a.map((r) => r.step))
      const losses = Math.max(...a.map((r, i) => Math.abs(b[i]!.loss - r.loss) / r.loss))
      expect(losses).toBeLessThan(1e-3)
      // Float order differs (tfjs' kernels and torch's), so gradients differ by ~1e-6; AdamW divides each
      // update by √v, which turns that into differences of the updates of the same order where |g| is large,
      // larger only where a gradient element is near zero. Measured against the updates themselves
      // (weights minus their starting values, both engines' starts being equal), they stay within 2 %.
      const [tfjsWeights, torchWeights] = [await readWeights(join(tfjsModel, "model.safetensors")), await readWeights(join(torchModel, "model.safetensors"))]
      expect([...torchWeights.keys()].sort()).toEqual([...tfjsWeights.keys()].sort())
      const start =
        (await tfjsStepZero({ base, family: "tiny", components: HYBRID, train: training(TRAIN), dataDir, latentsDir: `${latentsDir}-demo` })).initial
      const update = (w: Float32Array, name: string) => w.map((v, i) => v - start.get(name)![i]!)
      const worst = worstOf(tfjsWeights.keys(), (n) => relative(update(torchWeights.get(n)!.data, n), update(tfjsWeights.get(n)!.data, n)))
      console.log(`hybrid, 10 steps: worst loss difference ${losses.toExponential(1)}, worst update difference ${worst.error.toExponential(1)} (${worst.name})`)
      expect(worst.error, worst.name).toBeLessThan(0.02)
    }, 600_000)

    it("measure the same held-out validation loss at the same steps (step 0 before any update), within the loss curves' 1e-3 relative", () => {
      expect([...validationLosses.torch.keys()]).toEqual([0, 5, 10])
      expect([...validationLosses.tfjs.keys()]).toEqual([0, 5, 10])
      const worst = Math.max(
        ...[0, 5, 10].map((step) => Math.abs(validationLosses.torch.get(step)! - validationLosses.tfjs.get(step)!) / validationLosses.tfjs.get(step)!)
      )
      console.log(`hybrid, validation loss at steps 0, 5 and 10: tfjs ${[...validationLosses.tfjs.values()]}, torch ${[...validationLosses.torch.values()]}`)
      expect(worst).toBeLessThan(1e-3)
    })

    it("measure the same loss on a held-out dataset of its own (train.validationLoss.data), from step 0", async () => {
      const heldDir = join(folder.dir, "held-out")
      await Effect.runPromise(prepareSyntheticData(heldDir, { n: 2, size: 32, seed: 22 }))
      await onTfjs(
        Effect.flatMap(Engine, (engine) =>
          engine.encodeLatents({
            base: resolvedBase,
            dataDir: heldDir,
            outDir: `${heldDir}-latents`,
            progress: () => Effect.void
          }))
      )
      const measured = { tfjs: new Map<number, number>(), torch: new Map<number, number>() }
      const request = (on: keyof typeof measured): TrainRequest => ({
        base: resolvedBase,
        adaptation: resolveAdaptation(HYBRID, resolvedBase.base.family),
        train: training({ ...TRAIN, steps: 2, validationLoss: { data: synthetic({ n: 2, size: 32, seed: 22 }), every: 1, timesteps: 2 } }),
        dataDir,
        latentsDir: `${latentsDir}-demo`,
        validation: { dataDir: heldDir, latentsDir: `${heldDir}-latents` },
        workDir: join(folder.dir, `${on}-held-out`),
        ...quiet,
        metrics: (step, values) =>
          Effect.sync(() => {
            const value = values[trainingMetrics.validationLoss]
            if (value !== undefined) measured[on].set(step, value)
          })
      })
      await onTfjs(Effect.flatMap(Engine, (engine) => engine.train(request("tfjs"))))
      await onTorch(Effect.flatMap(Engine, (engine) => engine.train(request("torch"))))
      expect([...measured.tfjs.keys()]).toEqual([0, 1, 2])
      expect([...measured.torch.keys()]).toEqual([0, 1, 2])
      // Not the fraction's held-out samples: another set, so another loss.
      expect(measured.tfjs.get(0)).not.toBe(validationLosses.tfjs.get(0))
      const worst = Math.max(...[0, 1, 2].map((step) => Math.abs(measured.torch.get(step)! - measured.tfjs.get(step)!) / measured.tfjs.get(step)!))
      console.log(`hybrid, held-out dataset, validation loss at steps 0, 1, 2: tfjs ${[...measured.tfjs.values()]}, torch ${[...measured.torch.values()]}`)
      expect(worst).toBeLessThan(1e-3)
    }, 600_000)

    const generate = (outDir: string, modelDir: string | undefined, settings: Partial<GenerationInput>, on: keyof typeof BASES): GenerateRequest => ({
      base: BASES[on],
      adaptation: resolveAdaptation(HYBRID, BASES[on].base.family),
      generate: Schema.decodeUnknownSync(Generation)({ ...GENERATE, ...settings }),
      ...(modelDir === undefined ? {} : { modelDir }),
      resolution: 32,
      outDir,
      progress: () => Effect.void
    })
    const images = generatedImages

    it.each(
      [
        ["the base, Euler", undefined, { sampler: "euler" }, "demo"],
        ["the base, DDPM (noise at every step)", undefined, { sampler: "ddpm" }, "demo"],
        ["the tfjs-trained hybrid", "tfjs", { sampler: "euler" }, "demo"],
        ["the torch-trained hybrid", "torch", { sampler: "euler" }, "demo"],
        ["an SDXL base (two encoders, zeros for the empty prompt, size ids), Euler", undefined, { sampler: "euler" }, "sdxl"],
        // The samplers' other diffusers classes, their config keys, and negative prompts (the generation's, a prompt's own).
        ["the base, Euler ancestral (noise at every step), a negative prompt", undefined, {
          sampler: "euler_ancestral",
          negativePrompt: "blurry optical photo"
        }, "demo"],
        ["the torch-trained hybrid, DPM++ 2M SDE with Karras σ, a prompt's own negative prompt", "torch", {
          sampler: "dpmsolver_multistep",
          schedulerConfig: { algorithm_type: "sde-dpmsolver++", use_karras_sigmas: true },
          prompts: [{ text: "SAR image of farmland", negativePrompt: "{token} harbour" }, "{token} image of a harbour with a ship"]
        }, "demo"],
        [
          "the base, UniPC order 3 trailing",
          undefined,
          { sampler: "unipc_multistep", schedulerConfig: { solver_order: 3, timestep_spacing: "trailing" } },
          "demo"
        ],
        ["an SDXL base, Heun, the empty negative prompt encoded", undefined, { sampler: "heun", negativePrompt: "" }, "sdxl"]
      ] as const
    )("generate alike from the same noise: %s, to 1e-3", async (name, trainedBy, settings, on) => {
      const modelDir = trainedBy === undefined ? undefined : trainedBy === "tfjs" ? tfjsModel : torchModel
      const slug = name.replace(/\W+/g, "-")
      await onTfjs(Effect.flatMap(Engine, (engine) => engine.generate(generate(join(folder.dir, `tfjs-${slug}`), modelDir, settings, on))))
      await onTorch(Effect.flatMap(Engine, (engine) => engine.generate(generate(join(folder.dir, `torch-${slug}`), modelDir, settings, on))))
      const [a, b] = [await images(join(folder.dir, `tfjs-${slug}`)), await images(join(folder.dir, `torch-${slug}`))]
      expect(b.map((s) => s.sample)).toEqual(a.map((s) => s.sample))
      const worst = Math.max(...a.map((s, i) => s.data.reduce((m, v, j) => Math.max(m, Math.abs(v - b[i]!.data[j]!)), 0)))
      console.log(`${name}: worst pixel difference ${worst.toExponential(1)}`)
      expect(worst).toBeLessThan(1e-3)
    }, 600_000)
  })
})
