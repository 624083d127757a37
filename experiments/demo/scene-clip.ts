import { clipModel, synthetic } from "sardine"

/**
 * The demo's prompt-following judge: the SAR CLIP's architecture (experiments/demo/sar-clip-architecture/,
 * the demo base's tokenizer) trained from nothing on SAR *and* optical renderings of synthetic scenes
 * of every class, both captioned in the wording the demo's evaluation gives every prompt ("SAR image of
 * a harbour with two ships"; a learned token reads as "SAR"). The wording is the same for both
 * renderings, so it says nothing of the modality and the judge ranks prompts by layout alone: it can
 * tell whether the frozen optical base draws a harbour when asked, where the SAR CLIP reads optical
 * scenes at chance, and a judge captioned "optical image of …" for its optical half tied "SAR image of"
 * to SAR radiometry (docs/demo-base.md, "The prompt-following judge"). The demo's evaluate steps take
 * the alignment gap and retrieval from it (`alignment.promptFollowing`), the absolute alignment from
 * the SAR CLIP. The shipped model
 * (experiments/demo/scene-clip) is this declaration trained and exported:
 *
 *   sardine run experiments/demo/scene-clip.ts
 *   sardine export experiments/demo/scene-clip.ts --format clip --out experiments/demo/scene-clip
 *
 * docs/sar-clip.md has its curve and held-out numbers per modality.
 */
export default clipModel({
  name: "demo-scene-clip",
  description: "Tiny two-modality CLIP judging the demo's prompt following: synthetic SAR and optical scenes of every class with their layout captions.",
  architecture: "sar-clip-architecture",
  seed: 0,
  data: [
    // The SAR CLIP's scenes (single look, the default normalisation, "SAR image of {caption}").
    synthetic({ n: 8000, size: 32, looks: 1, seed: 1 }),
    // Other layouts rendered optical, grey as a generate step writes a sample, with grain of up to
    // single-look strength as the demo base was pretrained on; worded as the evaluation words prompts.
    synthetic({ modality: "optical", colour: "grey", grain: 1, n: 8000, size: 32, seed: 2, captionTemplate: "SAR image of {caption}" })
  ],
  train: { steps: 2000, batchSize: 64, lr: 2e-3, weightDecay: 0.1, warmupSteps: 100, seed: 0, checkpointEvery: 100 }
})
