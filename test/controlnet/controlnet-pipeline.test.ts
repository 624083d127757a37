import * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { disposeParameters } from "../../adapters/tfjs/checkpoint.ts"
import type { ControlNetPlan } from "../../adapters/tfjs/controlnet.ts"
import { layersOf } from "../../adapters/tfjs/layers.ts"
import { disposePipeline, type LoadedModel, loadControlNet, loadPipeline, type StableDiffusionPipeline } from "../../adapters/tfjs/pipeline-loader.ts"
import { disposeConditioning, promptConditioning, usesGuidance } from "../../adapters/tfjs/sampling/conditioning.ts"
import { type DiffusionModels, diffusionModelsOf } from "../../adapters/tfjs/sampling/diffusion-models.ts"
import { decodeAmplitude, sampleLatents } from "../../adapters/tfjs/sampling/sample-image.ts"
import { makeSampler } from "../../adapters/tfjs/sampling/sampler.ts"
import { referencePython } from "../support/reference-python.ts"
import { repoRoot } from "../support/run-process.ts"

/**
 * sardine's sampling with a ControlNet against diffusers' StableDiffusionControlNetPipeline on the same files
 * (sd1-tiny and the ControlNet of tools/make_controlnet_goldens.py), from the same noise: guided, guided in
 * guess mode, and unguided. diffusers runs live (tools/run_controlnet_pipeline.py).
 */

const PIPELINE = "test/fixtures/pipelines/sd1-tiny"
const CONTROLNET = "test/fixtures/controlnet/sd1-controlnet"
const SIDE = 16
const PROMPT = "a sar image of a harbour with ships"

const cases = [
  { name: "guided", guidance: 3, scale: 0.8, guessMode: false },
  { name: "guided, guess mode", guidance: 3, scale: 1, guessMode: true },
  { name: "unguided", guidance: 1, scale: 1.3, guessMode: false }
].map((c) => ({ ...c, sampler: "euler" as const, steps: 4, seed: 5, replicate: 1 }))

/** A conditioning image with structure in every channel, in [0, 1]. */
const controlImage = Float32Array.from({ length: SIDE * SIDE * 3 }, (_, i) => {
  const p = Math.floor(i / 3)
  const [x, y, c] = [p % SIDE, Math.floor(p / SIDE), i % 3]
  return ((x * (c + 1) + y * (3 - c)) % 11) / 10
})

describe("sampling with a ControlNet, as StableDiffusionControlNetPipeline", () => {
  let pipeline: StableDiffusionPipeline
  let controlnet: LoadedModel<ControlNetPlan>
  let models: DiffusionModels
  let dir: string
  let diffusers: Array<Float32Array>

  beforeAll(async () => {
    await Effect.runPromise(selectBackend("wasm"))
    pipeline = await Effect.runPromise(loadPipeline(PIPELINE))
    controlnet = await Effect.runPromise(loadControlNet(CONTROLNET))
    models = await Effect.runPromise(diffusionModelsOf(pipeline))
    dir = await mkdtemp(join(tmpdir(), "sardine-controlnet-pipeline-"))
    await writeFile(join(dir, "image.f32"), Buffer.from(controlImage.buffer))
    const request = {
      pipeline: join(repoRoot, PIPELINE),
      controlnet: join(repoRoot, CONTROLNET),
      sdxl: false,
      out: dir,
      cases: cases.map((c) => ({ ...c, prompt: PROMPT, image: join(dir, "image.f32"), imageShape: [SIDE, SIDE, 3], resolution: SIDE }))
    }
    execFileSync(referencePython(), [join(repoRoot, "tools/run_controlnet_pipeline.py")], {
      input: JSON.stringify(request),
      stdio: ["pipe", "inherit", "inherit"]
    })
    diffusers = await Promise.all(cases.map(async (_, i) => new Float32Array((await readFile(join(dir, `${i}.f32`))).buffer.slice(0))))
  })
  afterAll(async () => {
    disposePipeline(pipeline)
    disposeParameters(controlnet.parameters)
    await rm(dir, { recursive: true, force: true })
  })

  it.each(cases.map((c, i) => [c.name, i] as const))("%s: the same image from the same noise", async (_, i) => {
    const c = cases[i]!
    const sampler = await Effect.runPromise(makeSampler({ sampler: c.sampler, steps: c.steps, eta: 0 }, pipeline.scheduler.config, "scheduler"))
    const conditioning = promptConditioning(models, PROMPT, usesGuidance(c.guidance), {
      originalSize: [SIDE, SIDE],
      cropTopLeft: [0, 0],
      targetSize: [SIDE, SIDE]
    })
    const image = tf.tensor4d(controlImage, [1, SIDE, SIDE, 3])
    const control = { plan: controlnet.plan, layers: layersOf(controlnet.parameters), image, scale: c.scale, guessMode: c.guessMode }
    const sample = (withControl: boolean) =>
      tf.tidy(() => {
        const latents = sampleLatents({
          models,
          sampler,
          conditioning,
          guidanceScale: c.guidance,
          size: [SIDE / 2, SIDE / 2],
          seed: c.seed,
          replicate: c.replicate,
          ...(withControl ? { control } : {})
        })
        return decodeAmplitude(models.vae, latents)
      })
    const amplitude = sample(true)
    const without = sample(false)
    const ours = amplitude.dataSync()
    const plain = without.dataSync()
    let worst = 0
    let moved = 0
    for (let p = 0; p < ours.length; p++) {
      worst = Math.max(worst, Math.abs(ours[p]! - diffusers[i]![p]!))
      moved = Math.max(moved, Math.abs(plain[p]! - diffusers[i]![p]!))
    }
    expect(worst, "largest difference from diffusers").toBeLessThan(1e-4)
    expect(moved, "the ControlNet changes the image").toBeGreaterThan(1e-2)
    tf.dispose([amplitude, without, image])
    disposeConditioning(conditioning)
  })
})
