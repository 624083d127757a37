import { experiment, frozen, lora } from "sardine"
import { shared } from "./common.ts"

export default experiment({
  ...shared,
  name: "vae-lora",
  description: "LoRA on the VAE's attention and resnet convolutions, trained on reconstruction.",
  components: { unet: frozen(), vae: lora({ rank: 16, lr: 1e-4 }), textEncoders: frozen() },
  train: { ...shared.train, vae: { loss: "l1", klWeight: 1e-6 } }
})
