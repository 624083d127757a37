import { controlNet, diffusers, experiment, frozen, full, learnedToken, lora, study, synthetic } from "sardine"

/**
 * A ControlNet on the synthetic label maps trained next to a LoRA UNet and a learned <SAR> token, and one
 * on the optical images (optical → SAR translation), on the tiny SD-1 pipeline of the test fixtures (16 px
 * scenes). Its weights are random, so its images mean nothing; it shows the conditioned path end to end —
 * prepare the conditions, train, sample each scene of generate.conditions with its condition, judge each
 * sample against its scene's true image, compare the two scene by scene, report — in about a minute.
 */
const conditioned = (name: string, input: "label-map" | "optical", from: string) =>
  experiment({
    name,
    base: diffusers("../../test/fixtures/pipelines/sd1-tiny", { family: "sd15" }),
    components: {
      unet: lora({ rank: 2, lr: 1e-3 }),
      vae: frozen(),
      textEncoders: frozen(),
      token: learnedToken({ token: "<SAR>", init: "radar", lr: 5e-3 })
    },
    conditioning: controlNet({ input, from, treatment: full({ lr: 1e-3 }) }),
    data: synthetic({ n: 4, size: 16, seed: 1, looks: 1, captionTemplate: "{token} image of {caption}" }),
    train: { steps: 6, batchSize: 2, seed: 1, checkpointEvery: 3 },
    generate: {
      conditions: synthetic({ n: 2, size: 16, seed: 5, looks: 1, captionTemplate: "{token} image of {caption}" }),
      seeds: [0, 1],
      steps: 4,
      guidanceScale: 3
    },
    evaluate: {
      reference: synthetic({ n: 4, size: 16, seed: 99, looks: 1 }),
      texture: { levels: 8, distances: [1], angles: [0] }
    }
  })

export default study({
  name: "tiny-controlnet",
  experiments: [conditioned("label-map-controlnet", "label-map", "conditioning_file_name"), conditioned("optical-controlnet", "optical", "optical_file_name")]
})
