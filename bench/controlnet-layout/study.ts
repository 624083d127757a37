import { controlNet, diffusers, experiment, frozen, full, study, synthetic } from "sardine"

/**
 * bench/controlnet-layout.ts's study (and test/controlnet/controlnet-layout.test.ts's, cut down): a full ControlNet
 * (initialised from the UNet) trained on the synthetic label maps at 32 px on the demo's pretrained tiny base beside
 * its full UNet (the base makes optical-looking images; a frozen one learns layout, but slower), then each of
 * generate.conditions' scenes sampled with its map; the evaluation's paired metrics say whether the
 * samples follow their own scene's layout more than the other scenes'. "untrained-controlnet" samples the
 * same trained ControlNet at scale 0: its residuals are zero, as a zero-initialised ControlNet's are (its zero
 * convolutions), so it samples as the untrained model does — the floor — and shares the train step (scale
 * shapes sampling only). The bench sets the knobs through the environment (SARDINE_BENCH_STEPS, _LR, _BATCH,
 * _TRAIN_SCENES, _SEED, _UNET_LR (0: frozen) for the train step, _SCENES, _DRAWS for the conditions and noise draws,
 * _SCALE); the defaults are the recipe (bench/controlnet-layout.ts has what each setting gave).
 */
const knob = (name: string, fallback: number) => Number(process.env[`SARDINE_BENCH_${name}`] ?? fallback)
const steps = knob("STEPS", 400)
const lr = knob("LR", 1e-2)
const batchSize = knob("BATCH", 16)
const trainScenes = knob("TRAIN_SCENES", 1200)
const seed = knob("SEED", 1)
const scenes = knob("SCENES", 8)
const draws = knob("DRAWS", 8)
const scale = knob("SCALE", 1)
const unetLr = knob("UNET_LR", 5e-4)

const caption = "SAR image of {caption}"

const labelMapControlNet = (name: string, description: string, sampledAt: number) =>
  experiment({
    name,
    description,
    base: diffusers("../../experiments/demo/base", { family: "tiny" }),
    components: { unet: unetLr > 0 ? full({ lr: unetLr }) : frozen(), vae: frozen(), textEncoders: frozen() },
    conditioning: controlNet({ input: "label-map", from: "conditioning_file_name", treatment: full({ lr }), scale: sampledAt }),
    data: synthetic({ n: trainScenes, size: 32, seed: 1, looks: 1, captionTemplate: caption }),
    train: { steps, batchSize, seed, lrSchedule: { warmupSteps: Math.min(20, steps - 1), decay: "cosine" }, maxGradNorm: 1, checkpointEvery: 1000 },
    generate: {
      conditions: synthetic({ n: scenes, size: 32, seed: 5, looks: 1, captionTemplate: caption }),
      seeds: Array.from({ length: draws }, (_, i) => i),
      steps: 8,
      guidanceScale: 3
    },
    evaluate: { reference: synthetic({ n: 4, size: 32, seed: 99, looks: 1 }), texture: { levels: 8, distances: [1], angles: [0] } }
  })

export default study({
  name: "controlnet-layout",
  experiments: [
    labelMapControlNet("label-map-controlnet", "A full ControlNet trained on the label maps, the base frozen.", scale),
    labelMapControlNet("untrained-controlnet", "The same ControlNet sampled at scale 0: zero residuals, as before training.", 0)
  ]
})
