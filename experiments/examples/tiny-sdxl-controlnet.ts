import { controlNet, diffusers, experiment, frozen, full, lora, synthetic } from "sardine"

/**
 * A ControlNet on the synthetic label maps on a tiny SDXL pipeline of the test fixtures (32 px scenes):
 * test/fixtures/pipelines/sdxl-tiny-controlnet is sdxl-tiny with the UNet of test/fixtures/controlnet/sdxl-unet,
 * whose blocks share one layers_per_block, as diffusers' ControlNetModel needs to copy them (sdxl-tiny's UNet has
 * a list, which the train step refuses). An SDXL ControlNet takes the pipeline's added conditions (the second text
 * encoder's pooled embedding and the size and crop time ids) as the SDXL UNet does. Trained next to a LoRA UNet,
 * each scene of generate.conditions sampled with its map, judged against its scene's true image. Its weights are
 * random, so its images mean nothing; it shows the conditioned path on an SDXL pipeline end to end in under a minute.
 */
export default experiment({
  name: "sdxl-label-map-controlnet",
  base: diffusers("../../test/fixtures/pipelines/sdxl-tiny-controlnet", { family: "sdxl" }),
  components: { unet: lora({ rank: 2, lr: 1e-3 }), vae: frozen(), textEncoders: frozen() },
  conditioning: controlNet({ input: "label-map", from: "conditioning_file_name", treatment: full({ lr: 1e-3 }) }),
  data: synthetic({ n: 4, size: 32, seed: 1, looks: 1, captionTemplate: "SAR image of {caption}" }),
  train: { steps: 4, batchSize: 2, seed: 1, checkpointEvery: 2 },
  generate: {
    conditions: synthetic({ n: 2, size: 32, seed: 5, looks: 1, captionTemplate: "SAR image of {caption}" }),
    seeds: [0, 1],
    steps: 4,
    guidanceScale: 3
  },
  evaluate: {
    reference: synthetic({ n: 4, size: 32, seed: 99, looks: 1 }),
    texture: { levels: 8, distances: [1], angles: [0] }
  }
})
