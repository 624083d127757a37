import { experiment, frozen, lora } from "sardine"
import { shared } from "./common.ts"

export default experiment({
  ...shared,
  name: "lora-unet",
  description: "Rank-32 LoRA on the UNet attention projections; everything else frozen.",
  components: { unet: lora({ rank: 32, alpha: 32, lr: 1e-4 }), vae: frozen(), textEncoders: frozen() }
})
