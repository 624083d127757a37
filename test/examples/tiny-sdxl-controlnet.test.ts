import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import type { GeneratedSample } from "../../framework/services/engine.ts"
import type { EvaluationResult } from "../../framework/steps/evaluation-result.ts"
import { referencePython } from "../support/reference-python.ts"
import { repoRoot, sardine } from "../support/run-process.ts"

const declaration = `${repoRoot}/experiments/examples/tiny-sdxl-controlnet.ts`
const FIXTURE = `${repoRoot}/test/fixtures/pipelines/sdxl-tiny-controlnet`

/** The one cached step folder that has the file `name`, with the file parsed. */
const stepFile = async <A>(cache: string, name: string): Promise<{ dir: string; value: A }> => {
  const dirs = (await readdir(join(cache, "steps"))).map((key) => join(cache, "steps", key)).filter((dir) => existsSync(join(dir, name)))
  expect(dirs).toHaveLength(1)
  return { dir: dirs[0]!, value: JSON.parse(await readFile(join(dirs[0]!, name), "utf8")) as A }
}

/**
 * An SDXL ControlNet through `sardine run` on the tfjs engine (experiments/examples/tiny-sdxl-controlnet.ts, the
 * tiny SDXL fixture at 32 px): trained next to a LoRA UNet, each scene sampled with its label map and recorded,
 * the samples judged against their scenes' truths, the ControlNet exported as a diffusers folder that diffusers'
 * ControlNetModel loads as an SDXL ControlNet (the added text-time conditions) and
 * StableDiffusionXLControlNetPipeline samples with beside the base. Cost: ≈ 40 s on 2 cores (one CLI run of 4 steps
 * at 32 px, an export, one Python start).
 */
describe("experiments/examples/tiny-sdxl-controlnet.ts end to end", () => {
  it("trains an SDXL ControlNet, samples the scenes with their conditions, evaluates them pair by pair, and exports what diffusers loads", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sardine-tiny-sdxl-controlnet-"))
    try {
      const cache = join(dir, "cache")
      const result = await sardine(["run", declaration, "--cache-dir", cache, "--tracking-uri", join(dir, "mlruns")])
      expect(result.stderr + result.stdout).toMatch(/sdxl-label-map-controlnet: \d+ ran, 0 cached, 0 failed, 0 blocked/)
      expect(result.code).toBe(0)

      const samples = (await stepFile<ReadonlyArray<GeneratedSample>>(cache, "samples.json")).value
      expect(samples.map((s) => [s.condition?.scene, s.seed])).toEqual([[0, 0], [0, 1], [1, 0], [1, 1]])
      const { dir: evaluationDir, value: evaluation } = await stepFile<EvaluationResult>(cache, "evaluation.json")
      const paired = evaluation.paired!
      expect(paired.pairs.map((p) => [p.scene, p.seed])).toEqual([[0, 0], [0, 1], [1, 0], [1, 1]])
      for (const p of paired.pairs) {
        expect(p.wasserstein).toBeGreaterThan(0)
        expect(Math.abs(p.layout)).toBeLessThanOrEqual(1)
        expect(p.layoutGain).toBeCloseTo(p.layout - p.shuffledLayout!, 12)
        expect(existsSync(join(evaluationDir, p.preview))).toBe(true)
      }
      expect(paired.classes!.map((c) => c.name)).toContain("water")

      // The trained ControlNet exported alone; diffusers loads it as an SDXL ControlNet and samples with it beside the base.
      const exported = join(dir, "controlnet")
      const written = await sardine(["export", declaration, "--format", "controlnet", "--out", exported, "--cache-dir", cache])
      expect(written.stderr + written.stdout).toContain(`sdxl-label-map-controlnet: wrote controlnet to ${exported}`)
      expect(written.code).toBe(0)
      const sampled = execFileSync(referencePython(), [
        "-c",
        [
          "import sys, torch",
          "from diffusers import ControlNetModel, StableDiffusionXLControlNetPipeline",
          "controlnet = ControlNetModel.from_pretrained(sys.argv[1], torch_dtype=torch.float32)",
          "pipe = StableDiffusionXLControlNetPipeline.from_pretrained(sys.argv[2], controlnet=controlnet, torch_dtype=torch.float32)",
          "image = torch.zeros(1, 8, 32, 32); image[:, 0] = 1",
          "out = pipe(prompt='SAR image of water', image=image, num_inference_steps=2, guidance_scale=1.0, height=32, width=32, output_type='np').images",
          "trained = any(p.abs().max() > 0 for n, p in controlnet.named_parameters() if 'zero_conv' in n or 'controlnet_down_blocks' in n or 'controlnet_mid_block' in n)",
          "print(controlnet.config.addition_embed_type, controlnet.config.conditioning_channels, trained, out.shape[1], out.shape[2], bool(abs(out).sum() > 0))"
        ].join("\n"),
        exported,
        FIXTURE
      ], { encoding: "utf8" })
      // text_time: the added conditions of SDXL; the zero convolutions moved from 0, so the export carries what trained.
      expect(sampled.trim().split("\n").at(-1)).toBe("text_time 8 True 32 32 True")
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 240_000)
})
