import { diffusers, experiment, frozen, full, learnedToken, lora, synthetic } from "sardine"

/**
 * The seed study's hybrid — full UNet + LoRA on both text encoders + a learned <SAR> token —
 * on the tiny SDXL-like pipeline of the test fixtures and a small synthetic SAR set. Its weights
 * are random, so its images mean nothing; it shows the whole path (train, sample, evaluate,
 * export) in about a minute on a laptop CPU.
 */
export default experiment({
  name: "tiny-hybrid",
  base: diffusers("../../test/fixtures/pipelines/sdxl-tiny", { family: "sdxl" }),
  components: {
    unet: full({ lr: 1e-3 }),
    vae: frozen(),
    textEncoders: lora({ rank: 2, lr: 1e-3 }),
    token: learnedToken({ token: "<SAR>", init: "radar", lr: 5e-3 })
  },
  data: synthetic({ n: 8, size: 32, seed: 1, looks: 1, exclude: ["ships"], captionTemplate: "{token} image of {caption}" }),
  train: {
    steps: 20,
    batchSize: 2,
    seed: 1,
    checkpointEvery: 10,
    // The diffusion loss of two scenes never trained on, before training and every 10 steps.
    validationLoss: {
      data: synthetic({ n: 2, size: 32, seed: 2, looks: 1, exclude: ["ships"], captionTemplate: "{token} image of {caption}" }),
      every: 10,
      timesteps: 2
    }
  },
  generate: {
    prompts: [
      { text: "{token} image of fields crossed by a road", split: "seen" },
      { text: "{token} image of a harbour with ships", split: "unseen" }
    ],
    seeds: [0, 1],
    steps: 8,
    guidanceScale: 3
  },
  evaluate: {
    reference: synthetic({ n: 8, size: 32, seed: 99, looks: 1 }),
    texture: { levels: 16, distances: [1], angles: [0, 90] },
    alignment: { clip: "../../test/fixtures/clip" }
  }
})
