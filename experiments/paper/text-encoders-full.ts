import { experiment, frozen, full } from "sardine"
import { shared } from "./common.ts"

export default experiment({
  ...shared,
  name: "text-encoders-full",
  description: "Both CLIP text encoders train fully; UNet and VAE frozen.",
  components: { unet: frozen(), vae: frozen(), textEncoders: full({ lr: 5e-6 }) }
})
