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

const declaration = `${repoRoot}/experiments/examples/tiny-controlnet.ts`

/** The file `name` of every cached step that has one, parsed. */
const stepFiles = async <A>(cache: string, name: string): Promise<Array<A>> => {
  const out: Array<A> = []
  for (const key of await readdir(join(cache, "steps"))) {
    const file = join(cache, "steps", key, name)
    if (existsSync(file)) out.push(JSON.parse(await readFile(file, "utf8")) as A)
  }
  return out
}

/**
 * A conditioned experiment through `sardine run` on the tfjs engine: a ControlNet trained on the label maps
 * next to a LoRA UNet and a token, each scene of generate.conditions sampled with its map and recorded, and
 * each sample judged against its scene's true image, the ControlNet exported and loaded by diffusers. Cost: ≈ 50 s on 2 cores
 * (two CLI runs, 6 steps at 16 px, one Python start).
 */
describe("experiments/examples/tiny-controlnet.ts end to end", () => {
  it("trains the ControlNet, samples the scenes with their maps, evaluates each sample against its scene's truth, and exports the ControlNet", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sardine-tiny-controlnet-"))
    try {
      const cache = join(dir, "cache")
      const result = await sardine(["run", declaration, "--cache-dir", cache, "--tracking-uri", join(dir, "mlruns")])
      expect(result.stderr + result.stdout).toContain("tiny-controlnet: 8 ran, 0 cached, 0 failed, 0 blocked")
      expect(result.code).toBe(0)

      const [samples = []] = await stepFiles<ReadonlyArray<GeneratedSample>>(cache, "samples.json")
      // Two scenes × two seeds, each sample naming its scene; the scene's caption is its prompt.
      expect(samples.map((s) => [s.condition?.scene, s.seed])).toEqual([[0, 0], [0, 1], [1, 0], [1, 1]])
      expect(samples.every((s) => s.condition!.source.startsWith("synthetic:") && s.prompt.includes("<SAR>"))).toBe(true)

      const evaluations = await stepFiles<EvaluationResult>(cache, "evaluation.json")
      expect(evaluations).toHaveLength(1)
      const paired = evaluations[0]!.paired!
      expect(paired.pairs.map((p) => [p.scene, p.seed])).toEqual([[0, 0], [0, 1], [1, 0], [1, 1]])
      for (const p of paired.pairs) {
        expect(p.wasserstein).toBeGreaterThan(0)
        expect(p.ks).toBeGreaterThan(0)
        expect(Math.abs(p.layout)).toBeLessThanOrEqual(1)
      }
      expect(paired.wasserstein.n).toBe(4)
      // The label maps' classes, each with the true image's statistics where the scenes have it.
      expect(paired.classes!.map((c) => c.name)).toEqual(["water", "bare-field", "crops", "forest", "urban", "roads", "bridges", "ships"])
      const present = paired.classes!.filter((c) => c.truth.pixels > 0)
      expect(present.length).toBeGreaterThan(0)
      for (const c of present) expect(c.generated.pixels).toBe(c.truth.pixels)

      // The report's conditioned tables: the paired metrics and the classes of the scenes.
      const report = await readFile(
        join(cache, "steps", (await readdir(join(cache, "steps"))).find((key) => existsSync(join(cache, "steps", key, "report.md")))!, "report.md"),
        "utf8"
      )
      expect(report).toContain("Conditioned strategies: each sample against the true image of its scene")
      expect(report).toContain("label-map-controlnet: amplitude per class of the label maps, generated / true")
      for (const c of present) expect(report).toContain(`| ${c.name} | ${c.truth.pixels} |`)

      // Exported as a diffusers ControlNet folder, which diffusers loads.
      const exported = join(dir, "controlnet")
      const written = await sardine(["export", declaration, "--format", "controlnet", "--out", exported, "--cache-dir", cache])
      expect(written.stderr + written.stdout).toContain(`label-map-controlnet: wrote controlnet to ${exported}`)
      expect(written.code).toBe(0)
      const loaded = execFileSync(referencePython(), [
        "-c",
        "import sys; from diffusers import ControlNetModel; m = ControlNetModel.from_pretrained(sys.argv[1]); print(m.config.conditioning_channels, sum(p.numel() for p in m.parameters()))",
        exported
      ], { encoding: "utf8" })
      const [channels, parameters] = loaded.trim().split(" ").map(Number)
      expect(channels).toBe(8)
      expect(parameters).toBeGreaterThan(0)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
