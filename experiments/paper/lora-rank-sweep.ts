import { grid, lora, study } from "sardine"
import loraUnet from "./lora-unet.ts"

const ranks = [4, 8, 16, 32, 64]

/**
 * How much LoRA rank the UNet needs: the seed study's LoRA-UNet strategy at ranks 4 to 64, alpha = rank
 * (a scale of 1, as its rank 32). Everything but the rank is lora-unet's, so the sweep shares data
 * preparation and the latent and text caches with the paper study, and its rank-32 training is the
 * paper's own (same content key: run after the paper study, it is found in the cache).
 */
export default study({
  name: "lora-unet-rank",
  description: "The UNet LoRA strategy of the seed study at ranks 4, 8, 16, 32 and 64.",
  engine: "torch",
  experiments: grid(
    { ...loraUnet, description: "LoRA on the UNet attention projections at the rank its name says (alpha = rank); everything else frozen." },
    { "components.unet": ranks.map((rank) => lora({ rank, alpha: rank, lr: 1e-4 })) },
    { name: ([unet]) => `lora-unet-r${(unet!.value as { rank: number }).rank}` }
  )
})
