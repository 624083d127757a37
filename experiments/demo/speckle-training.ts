import { experiment, frozen, full, study, trained } from "sardine"
import demo from "./study.ts"

/**
 * The demo's full-UNet and hybrid strategies trained otherwise (issue 22: can a training setting bring
 * the generated speckle — per-image ENL — to the reference's without losing the prompt?): one change
 * at a time against the demo's own training, and the UNet strategies trained on a VAE fine-tuned on
 * SAR first (the demo's `full-vae`, or its decoder alone). Sampled and judged as the demo samples and
 * judges. For trials, on the torch engine with one thread:
 *
 *   SARDINE_TORCH_THREADS=1 npx tsx tools/demo-speckle-settings.ts --declaration experiments/demo/speckle-training.ts --engine torch --match .
 */

type DemoExperiment = (typeof demo.experiments)[number]
type Training = NonNullable<DemoExperiment["train"]>

const named = (name: string) => demo.experiments.find((e) => e.name === name)!

/** `of` with its training changed as `change` says, named `<of>.<suffix>`. */
const trainedOtherwise = (of: string, suffix: string, change: Partial<Training>) => {
  const e = named(of)
  return experiment({ ...e, name: `${of}.${suffix}`, train: { ...e.train!, ...change } })
}

/** `of` trained from the VAE experiment `vae` merged into the base (its latents encoded with that VAE). */
const onVae = (of: string, vae: string) => {
  const e = named(of)
  return experiment({ ...e, name: `${of}.on-${vae}`, base: trained(vae, { family: "tiny" }) })
}

/** `e` sampled with the SDE variant of DPM-Solver++ (the best generation setting of speckle-settings.ts), named `<e>.sde`. */
const sde = (e: DemoExperiment) =>
  experiment({
    ...e,
    name: `${e.name}.sde`,
    generate: { ...e.generate, sampler: "dpmsolver_multistep", schedulerConfig: { algorithm_type: "sde-dpmsolver++" } }
  })

const fullVae = named("full-vae")
/** The VAE tuned on SAR three times longer. */
const longerVae = experiment({ ...fullVae, name: "full-vae.steps-600", train: { ...fullVae.train!, steps: 600 } })
const decoderOnly = experiment({
  ...fullVae,
  name: "full-vae-decoder",
  description: "The VAE's decoder alone learns SAR reconstruction: the latents, and so the base UNet, stay valid.",
  components: { unet: frozen(), vae: full({ lr: 5e-4, only: ["decoder", "post_quant_conv"] }), textEncoders: frozen() }
})

export default study({
  ...demo,
  name: "demo-speckle-training",
  description: "The demo's UNet strategies trained otherwise: noise offset, min-SNR, more steps, other learning rates, a SAR-tuned VAE.",
  experiments: [
    named("full-unet"),
    named("hybrid"),
    trainedOtherwise("full-unet", "noise-offset-0.1", { noiseOffset: 0.1 }),
    trainedOtherwise("full-unet", "min-snr-5", { minSnrGamma: 5 }),
    trainedOtherwise("full-unet", "steps-600", { steps: 600 }),
    experiment({ ...named("full-unet"), name: "full-unet.lr-1e-3", components: { ...named("full-unet").components, unet: full({ lr: 1e-3 }) } }),
    fullVae,
    decoderOnly,
    onVae("full-unet", "full-vae"),
    onVae("full-unet", "full-vae-decoder"),
    onVae("hybrid", "full-vae"),
    onVae("hybrid", "full-vae-decoder"),
    longerVae,
    onVae("full-unet", "full-vae.steps-600"),
    onVae("hybrid", "full-vae.steps-600"),
    sde(onVae("full-unet", "full-vae")),
    sde(onVae("hybrid", "full-vae")),
    sde(onVae("full-unet", "full-vae.steps-600")),
    sde(onVae("hybrid", "full-vae.steps-600"))
  ]
})
