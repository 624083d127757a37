import { controlNet, diffusers, experiment, frozen, full, study, synthetic, trained } from "sardine"
import demo from "../../experiments/demo/study.ts"

/**
 * bench/controlnet-layout.ts's study (and test/controlnet/controlnet-layout.test.ts's, sampled less): a full ControlNet
 * (initialised from the UNet) trained on the synthetic label maps at 32 px on the demo's pretrained tiny base beside
 * its full UNet (the base makes optical-looking images; a frozen one learns layout, but slower), then each of
 * generate.conditions' scenes sampled with its map; the evaluation's paired metrics say whether the
 * samples follow their own scene's layout more than the other scenes'. "untrained-controlnet" samples the
 * same trained ControlNet at scale 0: its residuals are zero, as a zero-initialised ControlNet's are (its zero
 * convolutions), so it samples as the untrained model does — the floor — and shares the train step (scale
 * shapes sampling only). The bench sets the knobs through the environment (SARDINE_BENCH_STEPS, _LR, _BATCH,
 * _TRAIN_SCENES, _SEED, _UNET_LR (0: frozen) for the train step, _SCENES, _DRAWS for the conditions and noise draws,
 * _SCALE); the defaults are the recipe (bench/controlnet-layout.ts has what each setting gave). With
 * SARDINE_BENCH_ON=hybrid it is the demo's conditioned strategy instead (SARDINE_BENCH_INPUT: label-map or optical):
 * its ControlNet alone over the demo's trained hybrid-no-token, on the demo's data, its training the defaults.
 */
const env = (name: string) => process.env[`SARDINE_BENCH_${name}`]
// "base": the ControlNet trains on the demo's optical base, beside its UNet at UNET_LR; "hybrid": the demo's
// conditioned strategy of INPUT ("label-map" or "optical"): a ControlNet alone over the demo's hybrid-no-token,
// trained first (one seed) and frozen, with the demo's data and training as the defaults.
const on = env("ON") ?? "base"
const input = (env("INPUT") ?? "label-map") as "label-map" | "optical"
const demoStrategy = demo.experiments.find((e) => e.name === `${input}-controlnet`)!
const demoTrain = demoStrategy.train!
const demoLr = demoStrategy.conditioning!.treatment._tag === "full" ? demoStrategy.conditioning!.treatment.lr : undefined
const knob = (name: string, fallback: number, demoValue?: number) => Number(env(name) ?? (on === "hybrid" ? demoValue ?? fallback : fallback))
const steps = knob("STEPS", 400, demoTrain.steps)
const lr = knob("LR", 1e-2, demoLr)
const batchSize = knob("BATCH", 16, demoTrain.batchSize)
const seed = knob("SEED", 1, demoTrain.seed)
const scenes = knob("SCENES", 8)
const draws = knob("DRAWS", 8)
const scale = knob("SCALE", 1)
const unetLr = knob("UNET_LR", 5e-4)
const column = input === "optical" ? "optical_file_name" : "conditioning_file_name"

const demoBase = diffusers("../../experiments/demo/base", { family: "tiny" })
const cheapEvaluation = { reference: synthetic({ n: 4, size: 32, seed: 99, looks: 1 }), texture: { levels: 8, distances: [1], angles: [0] } }
const { replicates: _, ...demoHybrid } = demo.experiments.find((e) => e.name === "hybrid-no-token")!
// Trained as the demo trains it; sampled and judged once, cheaply (the bench reads the ControlNets' evaluations).
const hybridOnce = {
  ...demoHybrid,
  base: demoBase,
  generate: { ...demoHybrid.generate, prompts: demoHybrid.generate.prompts!.slice(0, 1), seeds: [0] },
  evaluate: cheapEvaluation
}
const caption = "SAR image of {caption}"
const trainScenes = env("TRAIN_SCENES")
const onBase = on !== "hybrid"
const data = onBase || trainScenes !== undefined
  ? synthetic({ n: Number(trainScenes ?? 1200), size: 32, seed: 1, looks: 1, captionTemplate: caption })
  : demoStrategy.data

const controlNetExperiment = (name: string, description: string, sampledAt: number) =>
  experiment({
    name,
    description,
    base: onBase ? demoBase : trained("hybrid-no-token", { family: "tiny" }),
    components: { unet: unetLr > 0 && onBase ? full({ lr: unetLr }) : frozen(), vae: frozen(), textEncoders: frozen() },
    conditioning: controlNet({ input, from: column, treatment: full({ lr }), scale: sampledAt }),
    data,
    train: { steps, batchSize, seed, lrSchedule: { warmupSteps: Math.min(20, steps - 1), decay: "cosine" }, maxGradNorm: 1, checkpointEvery: 1000 },
    generate: {
      conditions: synthetic({ n: scenes, size: 32, seed: 5, looks: 1, captionTemplate: caption }),
      seeds: Array.from({ length: draws }, (_, i) => i),
      steps: 8,
      guidanceScale: 3
    },
    evaluate: cheapEvaluation
  })

export default study({
  name: "controlnet-layout",
  experiments: [
    ...(onBase ? [] : [experiment(hybridOnce)]),
    controlNetExperiment(`${input}-controlnet`, `A full ControlNet trained on the ${input} images.`, scale),
    controlNetExperiment("untrained-controlnet", "The same ControlNet sampled at scale 0: zero residuals, as before training.", 0)
  ]
})
