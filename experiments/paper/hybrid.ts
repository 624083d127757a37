import { experiment, frozen, full, learnedToken, lora } from "sardine"
import { shared } from "./common.ts"

/** The seed study's best strategy: full UNet, LoRA text encoders and a learned <SAR> token. */
export default experiment({
  ...shared,
  name: "hybrid",
  description: "Full UNet + LoRA on both text encoders + a learned <SAR> token.",
  components: {
    unet: full({ lr: 1e-5, weightDecay: 1e-2 }),
    vae: frozen(),
    textEncoders: lora({ rank: 16, lr: 5e-5 }),
    token: learnedToken({ token: "<SAR>", init: "radar", vectors: 1, lr: 5e-4 })
  },
  data: { ...shared.data, captionTemplate: "{token} image of {caption}" },
  generate: {
    ...shared.generate,
    prompts: shared.generate.prompts.map((p) => ({ ...p, text: p.text.replace(/^SAR image/, "{token} image") }))
  }
})
