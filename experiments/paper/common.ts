import { diffusers, imageFolder, meanStd, type ExperimentInput } from "sardine"

/**
 * What every strategy of the seed study shares (DESIGN §1): an SDXL base, ~100k airborne SAR
 * amplitude tiles of 1024 × 1024 normalised as A / (mean + 3·std) per image, the same training
 * budget, prompts and evaluation. Paths come from the environment so the same files run on any
 * machine: SARDINE_SDXL (diffusers folder of SDXL base 1.0), SARDINE_SAR_TRAIN and
 * SARDINE_SAR_REFERENCE (image folders with metadata.jsonl), SARDINE_SAR_CLIP (ONNX SAR CLIP,
 * docs/sar-clip.md). Learning rates and budget are sardine's choices where the study gives none.
 */
/** An unset variable stays visible in the path, so `sardine run` names it in its missing-folder error. */
const env = (name: string) => process.env[name] ?? `$${name}`

export const base = diffusers(env("SARDINE_SDXL"), { family: "sdxl" })

const sarTiles = (path: string) =>
  imageFolder(path, {
    unit: "amplitude",
    normalisation: meanStd({ k: 3, statistics: "per-image" }),
    resolution: { size: 1024, mode: "random-crop", flip: "horizontal" },
    captionTemplate: "{caption}",
    onError: "skip"
  })

export const shared = {
  // SDXL needs the torch engine (bf16, gradient checkpointing, a GPU), alone or in the study.
  engine: "torch" as const,
  base,
  data: sarTiles(env("SARDINE_SAR_TRAIN")),
  train: {
    steps: 20_000,
    batchSize: 4,
    gradientAccumulation: 4,
    seed: 1,
    lrSchedule: { warmupSteps: 500, decay: "cosine" },
    minSnrGamma: 5,
    noiseOffset: 0.05,
    maxGradNorm: 1,
    checkpointEvery: 1000,
    // An H100/H200's bf16 (fp32 master weights), activations recomputed to fit 1024² at batch 4.
    precision: "bf16",
    gradientCheckpointing: true,
    validationPrompts: ["SAR image of a harbour with ships", "SAR image of a dense urban area"]
  },
  generate: {
    prompts: [
      { text: "SAR image of a harbour with ships near a bridge", split: "seen" },
      { text: "SAR image of agricultural fields crossed by a road", split: "seen" },
      { text: "SAR image of a dense urban area", split: "seen" },
      { text: "SAR image of an airport with parked aircraft", split: "unseen" },
      { text: "SAR image of a wind farm at sea", split: "unseen" }
    ],
    seeds: [0, 1, 2, 3],
    samplesPerPrompt: 4,
    sampler: "euler",
    steps: 30,
    guidanceScale: 7
  },
  evaluate: {
    reference: sarTiles(env("SARDINE_SAR_REFERENCE")),
    amplitude: { domain: "amplitude", bins: 256 },
    texture: { levels: 32, distances: [1, 2], angles: [0, 45, 90, 135] },
    alignment: { clip: env("SARDINE_SAR_CLIP") }
  }
} satisfies Omit<ExperimentInput, "name" | "components">
