import { clipModel, synthetic } from "sardine"

/**
 * The demo's SAR CLIP: a tiny CLIPModel (32 × 32 images in 8 × 8 patches, 3-layer image and text
 * towers of width 64, 64-d joint space; sar-clip-architecture/) trained from nothing, contrastively,
 * on synthetic SAR scenes of every class — ships and bridges included, although the demo study
 * withholds some of them from its SAR training set — with their layout captions ("SAR image of a
 * harbour with two ships near a bridge"). The demo's evaluate steps score prompt alignment with it.
 * Its tokenizer is the demo base's (experiments/demo/architecture/tokenizer). The shipped model
 * (experiments/demo/sar-clip) is this declaration trained and exported:
 *
 *   sardine run experiments/demo/sar-clip.ts
 *   sardine export experiments/demo/sar-clip.ts --format clip --out experiments/demo/sar-clip
 *
 * docs/sar-clip.md has its curves and held-out numbers.
 */
export default clipModel({
  name: "demo-sar-clip",
  description: "Tiny SAR CLIP for the demo's prompt-alignment metric, trained on synthetic SAR image–caption pairs of every class.",
  architecture: "sar-clip-architecture",
  seed: 0,
  // The demo's image size and speckle (single look); its default normalisation and "SAR image of {caption}".
  data: synthetic({ n: 8000, size: 32, looks: 1, seed: 1 }),
  train: { steps: 1500, batchSize: 64, lr: 2e-3, weightDecay: 0.1, warmupSteps: 100, seed: 0, checkpointEvery: 250 }
})
