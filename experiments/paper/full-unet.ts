import { experiment, frozen, full } from "sardine"
import { shared } from "./common.ts"

export default experiment({
  ...shared,
  name: "full-unet",
  description: "Every UNet weight trains; VAE and text encoders stay frozen.",
  components: { unet: full({ lr: 1e-5, weightDecay: 1e-2 }), vae: frozen(), textEncoders: frozen() }
})
