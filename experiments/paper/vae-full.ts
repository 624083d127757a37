import { experiment, frozen, full } from "sardine"
import { shared } from "./common.ts"

export default experiment({
  ...shared,
  name: "vae-full",
  description: "The VAE trains fully on reconstruction of SAR tiles; UNet and text encoders frozen.",
  components: { unet: frozen(), vae: full({ lr: 1e-5 }), textEncoders: frozen() },
  train: { ...shared.train, vae: { loss: "l1", klWeight: 1e-6 } }
})
