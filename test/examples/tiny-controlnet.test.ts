import { execFileSync } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { describe, expect, it } from "vitest"
import type { StudyStatistics } from "../../framework/metrics/study-statistics.ts"
import type { GeneratedSample } from "../../framework/services/engine.ts"
import type { EvaluationResult } from "../../framework/steps/evaluation-result.ts"
import { launchChromium, openPage } from "../reports/headless-chromium.ts"
import { referencePython } from "../support/reference-python.ts"
import { repoRoot, sardine } from "../support/run-process.ts"

const declaration = `${repoRoot}/experiments/examples/tiny-controlnet.ts`

/** Every cached step's folder that has the file `name`, with the file's text. */
const stepDirs = async (cache: string, name: string): Promise<Array<{ dir: string; text: string }>> => {
  const out: Array<{ dir: string; text: string }> = []
  for (const key of await readdir(join(cache, "steps"))) {
    const dir = join(cache, "steps", key)
    if (existsSync(join(dir, name))) out.push({ dir, text: await readFile(join(dir, name), "utf8") })
  }
  return out
}

/** The file `name` of every cached step that has one, parsed. */
const stepFiles = async <A>(cache: string, name: string): Promise<Array<A>> => {
  const out: Array<A> = []
  for (const key of await readdir(join(cache, "steps"))) {
    const file = join(cache, "steps", key, name)
    if (existsSync(file)) out.push(JSON.parse(await readFile(file, "utf8")) as A)
  }
  return out
}

const pageScript = (body: string) => `(() => { ${body} })()`

/**
 * Two conditioned experiments through `sardine run` on the tfjs engine: ControlNets trained on the label maps
 * and on the optical images next to a LoRA UNet and a token, each scene of generate.conditions sampled with
 * its condition and recorded, each sample judged against its scene's true image (means with intervals, the
 * shuffled-scenes level), the two compared scene by scene; the report's conditioned rows (condition | true
 * SAR | generated) rendered in Chromium; the ControlNet exported alone and beside the merged pipeline, both
 * loaded by diffusers. Cost: ≈ 90 s on 2 cores (three CLI runs, 2 × 6 steps at 16 px, Chromium, two Python starts).
 */
describe("experiments/examples/tiny-controlnet.ts end to end", () => {
  it(
    "trains the ControlNets, samples the scenes with their conditions, evaluates and compares them, reports the rows, and exports the ControlNet",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "sardine-tiny-controlnet-"))
      try {
        const cache = join(dir, "cache")
        const result = await sardine(["run", declaration, "--cache-dir", cache, "--tracking-uri", join(dir, "mlruns")])
        expect(result.stderr + result.stdout).toMatch(/tiny-controlnet: \d+ ran, 0 cached, 0 failed, 0 blocked/)
        expect(result.code).toBe(0)

        const sampleSets = await stepFiles<ReadonlyArray<GeneratedSample>>(cache, "samples.json")
        expect(sampleSets).toHaveLength(2)
        for (const samples of sampleSets) {
          // Two scenes × two seeds, each sample naming its scene; the scene's caption is its prompt.
          expect(samples.map((s) => [s.condition?.scene, s.seed])).toEqual([[0, 0], [0, 1], [1, 0], [1, 1]])
          expect(samples.every((s) => s.condition!.source.startsWith("synthetic:") && s.prompt.includes("<SAR>"))).toBe(true)
        }

        const evaluations = await stepDirs(cache, "evaluation.json")
        expect(evaluations).toHaveLength(2)
        const labelMap = evaluations.map((e) => ({ ...e, result: JSON.parse(e.text) as EvaluationResult })).find((e) => e.result.paired?.legend !== undefined)!
        const paired = labelMap.result.paired!
        expect(paired.pairs.map((p) => [p.scene, p.seed])).toEqual([[0, 0], [0, 1], [1, 0], [1, 1]])
        for (const p of paired.pairs) {
          expect(p.wasserstein).toBeGreaterThan(0)
          expect(p.ks).toBeGreaterThan(0)
          expect(Math.abs(p.layout)).toBeLessThanOrEqual(1)
          expect(Math.abs(p.shuffledLayout!)).toBeLessThanOrEqual(1)
          expect(existsSync(join(labelMap.dir, p.preview))).toBe(true)
        }
        expect(paired.wasserstein.n).toBe(4)
        // Means over the pairs with intervals over the two seeds' noise draws; the shuffled level pairs each sample with the other scene.
        for (const metric of ["wasserstein", "ks", "layout", "shuffledLayout"] as const) {
          const e = paired.intervals[metric]!
          const values = paired.pairs.map((p) => (metric === "shuffledLayout" ? p.shuffledLayout! : p[metric]))
          expect(e.value).toBeCloseTo(values.reduce((a, b) => a + b, 0) / values.length, 10)
          expect(e.low).toBeLessThanOrEqual(e.value)
          expect(e.high).toBeGreaterThanOrEqual(e.value)
        }
        expect(paired.scenes.map((s) => s.scene)).toEqual([0, 1])
        for (const s of paired.scenes) for (const file of [s.condition, s.truth]) expect(existsSync(join(labelMap.dir, file))).toBe(true)
        // The label maps' classes, each with the true image's statistics where the scenes have it, and a colour.
        const classNames = ["water", "bare-field", "crops", "forest", "urban", "roads", "bridges", "ships"]
        expect(paired.classes!.map((c) => c.name)).toEqual(classNames)
        expect(paired.legend!.map((c) => c.name)).toEqual(classNames)
        expect(new Set(paired.legend!.map((c) => c.colour)).size).toBe(classNames.length)
        const present = paired.classes!.filter((c) => c.truth.pixels > 0)
        expect(present.length).toBeGreaterThan(0)
        for (const c of present) expect(c.generated.pixels).toBe(c.truth.pixels)

        // The study's statistics compare the two conditioned experiments pair by pair.
        const [reportDir] = (await stepDirs(cache, "report.md")).map((r) => r.dir)
        const statistics = JSON.parse(await readFile(join(reportDir!, "statistics.json"), "utf8")) as StudyStatistics
        expect(statistics.paired!.map((c) => [c.a, c.b, c.matched, c.draws])).toEqual([["label-map-controlnet", "optical-controlnet", 4, 2]])
        // Two scenes each: the layout gain is compared too, its difference the difference of the two strategies' mean gains (the same pairs).
        const compared = statistics.paired![0]!
        expect(Object.keys(compared.differences)).toEqual(["wasserstein", "ks", "layout", "layoutGain"])
        const meanGain = (name: string) => {
          const pairs = evaluations.map((e) => JSON.parse(e.text) as EvaluationResult).find((e) => e.experiments.includes(name))!.paired!.pairs
          return pairs.reduce((sum, p) => sum + p.layoutGain!, 0) / pairs.length
        }
        const gainDifference = compared.differences.layoutGain!
        expect(gainDifference.difference).toBeCloseTo(meanGain("label-map-controlnet") - meanGain("optical-controlnet"), 12)
        expect(gainDifference.low).toBeLessThanOrEqual(gainDifference.difference)
        expect(gainDifference.high).toBeGreaterThanOrEqual(gainDifference.difference)

        // The report's conditioned tables and rows: condition | true SAR | each seed's sample, as image links beside report.md.
        const report = await readFile(join(reportDir!, "report.md"), "utf8")
        expect(report).toContain("Conditioned strategies: each sample against the true image of its scene")
        expect(report).toContain("label-map-controlnet against optical-controlnet, pair by pair (same scene, same seed)")
        // The comparison's row (the means table has the metric as a column only).
        expect(report).toMatch(/^\| layout gain over shuffled \|/m)
        expect(report).toContain("label-map-controlnet: amplitude per class of the label maps, generated / true")
        for (const c of present) expect(report).toContain(`| ${c.name} | ${c.truth.pixels} |`)
        expect(report).toContain("### label-map-controlnet: conditioned samples")
        expect(report).toContain("### optical-controlnet: conditioned samples")
        const rows = report.split("\n").filter((line) => /^\| \d+: scene-/.test(line))
        expect(rows).toHaveLength(4)
        for (const row of rows) {
          const links = [...row.matchAll(/\]\((images\/conditioned\/[^)]+)\)/g)].map((m) => m[1]!)
          // Condition, truth and the two seeds' samples, each a file beside report.md.
          expect(links).toHaveLength(4)
          for (const link of links) expect(existsSync(join(reportDir!, link))).toBe(true)
        }

        // In Chromium: every conditioned row's images decode, embedded in the page.
        const browser = await launchChromium()
        try {
          const { page, problems } = await openPage(browser, pathToFileURL(join(reportDir!, "report.html")).href)
          const shown = await page.evaluate(pageScript(`
          return [...document.querySelectorAll("table[data-conditioned]")].map((t) => ({
            strategy: t.getAttribute("data-conditioned"),
            rows: [...t.querySelectorAll("tr")].slice(1).map((r) => [...r.querySelectorAll("img")].map((i) => i.complete && i.naturalWidth > 0 && i.src.startsWith("data:image/png")))
          }))`)) as ReadonlyArray<{ strategy: string; rows: ReadonlyArray<ReadonlyArray<boolean>> }>
          await page.close()
          expect(problems).toEqual([])
          expect(shown.map((t) => t.strategy)).toEqual(["label-map-controlnet", "optical-controlnet"])
          for (const t of shown) expect(t.rows).toEqual([[true, true, true, true], [true, true, true, true]])
        } finally {
          await browser.close()
        }

        // Exported as a diffusers ControlNet folder, which diffusers loads.
        const exported = join(dir, "controlnet")
        const exportArgs = ["--experiment", "label-map-controlnet", "--cache-dir", cache]
        const written = await sardine(["export", declaration, "--format", "controlnet", "--out", exported, ...exportArgs])
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

        // The merged pipeline export carries the same ControlNet beside the pipeline, says so, and diffusers loads the pair and samples with it.
        const merged = join(dir, "merged")
        const mergedRun = await sardine(["export", declaration, "--format", "diffusers", "--out", merged, ...exportArgs])
        expect(mergedRun.code).toBe(0)
        expect(mergedRun.stderr + mergedRun.stdout).toContain(`note: the trained ControlNet is in ${join(merged, "controlnet")}`)
        const weights = "diffusion_pytorch_model.safetensors"
        expect((await readFile(join(merged, "controlnet", weights))).equals(await readFile(join(exported, weights)))).toBe(true)
        const sampled = execFileSync(referencePython(), [
          "-c",
          [
            "import sys, torch",
            "from diffusers import ControlNetModel, StableDiffusionControlNetPipeline",
            "controlnet = ControlNetModel.from_pretrained(sys.argv[1] + '/controlnet', torch_dtype=torch.float32)",
            "pipe = StableDiffusionControlNetPipeline.from_pretrained(sys.argv[1], controlnet=controlnet, torch_dtype=torch.float32, safety_checker=None, requires_safety_checker=False)",
            "image = torch.zeros(1, 8, 16, 16); image[:, 0] = 1",
            "out = pipe(prompt='<SAR> image of water', image=image, num_inference_steps=1, guidance_scale=1.0, height=16, width=16, output_type='np').images",
            "print(type(pipe.controlnet).__name__, out.shape[1], out.shape[2])"
          ].join("\n"),
          merged
        ], { encoding: "utf8" })
        expect(sampled.trim().split("\n").at(-1)).toBe("ControlNetModel 16 16")
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    },
    300_000
  )
})
