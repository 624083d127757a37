import { controlNet, diffusers, experiment, frozen, full, study, synthetic } from "sardine"

/**
 * bench/controlnet-layout.ts's study: a ControlNet (initialised from the UNet) trained on the synthetic
 * label maps at 32 px on the demo's pretrained tiny base, everything else frozen, then each of
 * generate.conditions' scenes sampled with its map; the evaluation's paired metrics say whether the
 * samples follow their own scene's layout more than another scene's. The bench sets the knobs through
 * the environment (SARDINE_BENCH_STEPS, _LR, _SCENES, _SEED: the train step's).
 */
const steps = Number(process.env.SARDINE_BENCH_STEPS ?? 1500)
const lr = Number(process.env.SARDINE_BENCH_LR ?? 1e-2)
const scenes = Number(process.env.SARDINE_BENCH_SCENES ?? 6)
const seed = Number(process.env.SARDINE_BENCH_SEED ?? 1)

const caption = "SAR image of {caption}"

export default study({
  name: "controlnet-layout",
  experiments: [
    experiment({
      name: "label-map-controlnet",
      base: diffusers("../../experiments/demo/base", { family: "tiny" }),
      components: { unet: frozen(), vae: frozen(), textEncoders: frozen() },
      conditioning: controlNet({ input: "label-map", from: "conditioning_file_name", treatment: full({ lr }) }),
      data: synthetic({ n: 64, size: 32, seed: 1, looks: 1, captionTemplate: caption }),
      train: { steps, batchSize: 4, seed, checkpointEvery: 1000 },
      generate: {
        conditions: synthetic({ n: scenes, size: 32, seed: 5, looks: 1, captionTemplate: caption }),
        seeds: [0, 1, 2, 3],
        steps: 8,
        guidanceScale: 3
      },
      evaluate: { reference: synthetic({ n: 4, size: 32, seed: 99, looks: 1 }), texture: { levels: 8, distances: [1], angles: [0] } }
    })
  ]
})
