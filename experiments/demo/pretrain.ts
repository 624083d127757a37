import { experiment, frozen, full, scratch, study, synthetic, trained } from "sardine"

/**
 * The demo's tiny base model, pretrained from nothing on synthetic optical-like scenes of every class
 * (ships and bridges included: the demo later withholds some of them from SAR). Stage 1 trains the VAE
 * alone to reconstruct the scenes with grain; stage 2 starts from its merged result and trains the UNet
 * and the text encoder on the captioned scenes without grain, the VAE frozen (its latents are encoded
 * once and cached). The shipped base (experiments/demo/base) is stage 2 exported, both on the torch
 * engine (about 20 minutes of training on 2 CPU cores):
 *
 *   SARDINE_TORCH_THREADS=1 sardine run experiments/demo/pretrain.ts --engine torch --concurrency 1
 *   sardine export experiments/demo/pretrain.ts --experiment unet --engine torch --format diffusers --out experiments/demo/base
 *
 * docs/demo-base.md has the architecture, the curves, samples and timings.
 */

const family = "tiny" as const

/** The VAE learns to pass pixel-scale texture from grain of every strength up to single-look-like. */
const grainyScenes = synthetic({ modality: "optical", n: 8000, size: 32, seed: 2024, grain: 1 })
/** The same scenes without grain: the UNet learns layout from text, which grain would drown. */
const scenes = synthetic({ modality: "optical", n: 8000, size: 32, seed: 2024 })

const prompts = [
  "optical image of a harbour with a ship",
  "optical image of a river crossed by a bridge between crop fields and forest",
  "optical image of farmland with crop fields and bare fields crossed by two roads near a village",
  "optical image of a town with urban blocks and streets",
  "optical image of a lake surrounded by forest",
  "optical image of woodland crossed by a road"
]

const generate = { prompts, seeds: [0, 1], steps: 30, guidanceScale: 4 }

const evaluate = {
  reference: synthetic({ modality: "optical", n: 48, size: 32, seed: 99 }),
  texture: { levels: 16, distances: [1], angles: [0, 90] }
}

export default study({
  name: "demo-base",
  description: "Pretraining the demo's tiny SD-like base on synthetic optical scenes: the VAE, then the UNet and text encoder.",
  concurrency: 1,
  experiments: [
    experiment({
      name: "vae",
      description: "Stage 1: the VAE reconstructs the optical scenes (L1 and a KL term small enough to keep the posterior sharp).",
      base: scratch("architecture", { family, seed: 0 }),
      components: { unet: frozen(), vae: full({ lr: 2e-3 }), textEncoders: frozen() },
      data: grainyScenes,
      train: {
        steps: 3500,
        batchSize: 16,
        seed: 1,
        lrSchedule: { warmupSteps: 100, decay: "cosine" },
        maxGradNorm: 1,
        vae: { loss: "l1", klWeight: 1e-6 },
        checkpointEvery: 500
      },
      generate,
      evaluate
    }),
    experiment({
      name: "unet",
      description: "Stage 2: UNet and text encoder denoise the stage-1 latents of the captioned scenes.",
      base: trained("vae", { family }),
      components: { unet: full({ lr: 1e-3 }), vae: frozen(), textEncoders: full({ lr: 3e-4 }) },
      data: scenes,
      train: {
        steps: 4500,
        batchSize: 32,
        seed: 2,
        lrSchedule: { warmupSteps: 500, decay: "cosine" },
        maxGradNorm: 1,
        minSnrGamma: 5,
        ema: { decay: 0.999 },
        captionDropout: 0.1,
        checkpointEvery: 1000
      },
      generate,
      evaluate
    })
  ]
})
