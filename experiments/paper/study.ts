import { study } from "sardine"
import fullUnet from "./full-unet.ts"
import hybrid from "./hybrid.ts"
import loraUnet from "./lora-unet.ts"
import textEncodersFull from "./text-encoders-full.ts"
import textEncodersLora from "./text-encoders-lora.ts"
import vaeFull from "./vae-full.ts"
import vaeLora from "./vae-lora.ts"

/** The seed study (DESIGN §1): every strategy on the same SDXL base, data and evaluation. */
export default study({
  name: "paper",
  description: "Which components of SDXL to fine-tune, and how, to generate realistic SAR.",
  // SDXL needs the torch engine (bf16, gradient checkpointing, a GPU): README, "Run the paper's study on a GPU machine".
  engine: "torch",
  experiments: [fullUnet, loraUnet, textEncodersLora, textEncodersFull, vaeFull, vaeLora, hybrid]
})
