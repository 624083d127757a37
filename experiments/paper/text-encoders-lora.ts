import { experiment, frozen, lora } from "sardine"
import { shared } from "./common.ts"

export default experiment({
  ...shared,
  name: "text-encoders-lora",
  description: "LoRA on both CLIP text encoders only; UNet and VAE frozen.",
  components: { unet: frozen(), vae: frozen(), textEncoders: lora({ rank: 16, lr: 5e-5 }) }
})
