/**
 * The comparison report from a small real study: run through the real runner (production
 * prepare-data, evaluate and report steps; engine stand-ins), opened in a real headless Chromium.
 */
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { GLCM_PROPERTIES } from "../../framework/metrics/glcm.ts"
import { ReportRenderer } from "../../framework/services/report-renderer.ts"
import type { EvaluationResult } from "../../framework/steps/evaluation-result.ts"
import { textWidth } from "../../reports/charts/text-width.ts"
import { metricColumns, badness } from "../../reports/metric-columns.ts"
import { repoRoot, run } from "../support/run-process.ts"
import { launchChromium, openPage, type OpenBrowser } from "./headless-chromium.ts"
import { markdownFacts, renderMarkdownPage } from "./markdown-page.ts"
import { labelProblems, pageFacts, type PageFacts } from "./page-facts.ts"
import { runReportStudy, type RanStudy } from "./report-study.ts"
import { reportStudyServices } from "./stand-in-steps.ts"

const screenshots = join(repoRoot, "test-output", "reports")
const study = { name: "report-test", strategies: 4, seenPrompts: 2, unseenPrompts: 2, seeds: 2, trainSteps: 30, size: 64, referenceImages: 8 }

let dir = ""
let ran: RanStudy
let browser: OpenBrowser
let reportDir = ""
let facts: PageFacts

const evaluationOf = async (name: string): Promise<EvaluationResult> => {
  const step = ran.plan.steps.find((s) => s.kind === "evaluate" && s.experiments.includes(name))!
  return JSON.parse(await readFile(join(ran.cacheDir, "steps", step.key, "evaluation.json"), "utf8")) as EvaluationResult
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sardine-report-"))
  await mkdir(screenshots, { recursive: true })
  ran = await runReportStudy(dir, study)
  const reportStep = ran.plan.steps.find((s) => s.kind === "report")!
  reportDir = join(ran.cacheDir, "steps", reportStep.key)
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
  if (dir !== "") await rm(dir, { recursive: true, force: true })
})

describe("the comparison report of a study", () => {
  it("is the study's report step: every step ran and report.html, report.md and images/ are in its output", () => {
    expect(ran.outcomes.filter((o) => o.status !== "ran").map((o) => `${o.step.id}: ${o.status} ${o.detail ?? ""}`)).toEqual([])
    for (const file of ["report.html", "report.md", "report-request.json", "images/charts/amplitude-histogram.svg"]) {
      expect(existsSync(join(reportDir, file)), file).toBe(true)
    }
  })

  it("opens in headless Chromium without errors, every image loads, every chart has content and readable labels", async () => {
    const { page, problems } = await openPage(browser, pathToFileURL(join(reportDir, "report.html")).href)
    facts = await pageFacts(page)
    await page.screenshot({ path: join(screenshots, "report-full.png"), fullPage: true })
    await page.screenshot({ path: join(screenshots, "report-top.png") })
    for (const id of ["amplitude-histogram", "amplitude-cdf", "glcm-contrast", "clip-alignment", "training-loss"]) {
      await page.locator(`svg#${id}`).screenshot({ path: join(screenshots, `chart-${id}.png`) })
    }
    await page.close()
    expect(problems).toEqual([])

    // Grid: 4 prompts × (1 real + 4 strategies × 2 samples), all embedded and decoded.
    expect(facts.images).toHaveLength(4 * (1 + 4 * 2))
    expect(facts.images.filter((i) => !(i.complete && i.naturalWidth > 0 && i.dataUri))).toEqual([])

    // Charts: histogram, CDF, one GLCM panel per property, CLIP alignment, one per training metric.
    const ids = facts.charts.map((c) => c.id)
    expect(ids).toEqual(expect.arrayContaining([
      "amplitude-histogram", "amplitude-cdf", "clip-alignment",
      ...GLCM_PROPERTIES.map((p) => `glcm-${p.toLowerCase()}`),
      "training-loss", "training-lr-unet", "training-lr-text_encoder", "training-lr-token", "training-grad_norm", "training-images_per_s"
    ]))
    expect(facts.charts).toHaveLength(2 + GLCM_PROPERTIES.length + 1 + 6)
    expect(facts.charts.filter((c) => c.visibleMarks === 0).map((c) => c.id)).toEqual([])
    const histogram = facts.charts.find((c) => c.id === "amplitude-histogram")!
    expect(new Set(histogram.series.map((s) => s.name))).toEqual(new Set(["real (reference)", "baseline", "full-unet", "lora-unet", "hybrid"]))
    expect(facts.charts.flatMap(labelProblems)).toEqual([])
    // Axis titles name their unit or scale.
    expect(histogram.texts.map((t) => t.text)).toEqual(expect.arrayContaining([
      "normalised amplitude v = A / (mean + 3·std), clipped to [0, 1] (unitless)",
      "fraction of pixels per bin (log scale)"
    ]))
  })

  it("estimates label widths at least as wide as the browser draws them (layout relies on it)", () => {
    const texts = facts.charts.flatMap((c) => c.texts).filter((t) => t.text.length > 0)
    expect(texts.length).toBeGreaterThan(100)
    const estimate = (t: (typeof texts)[number]) => textWidth(t.text, t.fontSize, t.bold ? "bold" : "normal")
    const narrow = texts.filter((t) => estimate(t) < t.width - 0.5)
    expect(narrow.map((t) => `${t.text}: estimated ${estimate(t).toFixed(1)} < drawn ${t.width.toFixed(1)}`)).toEqual([])
  })

  it("gives each strategy one colour in every chart and table, distinct from the others", () => {
    const colours = new Map<string, Set<string>>()
    for (const s of facts.charts.flatMap((c) => c.series)) colours.set(s.name, new Set([...(colours.get(s.name) ?? []), s.colour]))
    for (const { colour, name } of facts.swatches) colours.set(name, new Set([...(colours.get(name) ?? []), colour]))
    const names = ["baseline", "full-unet", "lora-unet", "hybrid"]
    for (const name of names) expect([...colours.get(name)!], name).toHaveLength(1)
    expect(new Set(names.map((n) => [...colours.get(n)!][0])).size).toBe(names.length)
  })

  it("lays out the strategy table from the declarations", () => {
    const table = facts.tables.find((t) => t.id === "strategies")!
    expect(table.header).toEqual(["strategy", "UNet", "VAE", "text encoder", "learned token"])
    expect(table.rows).toEqual([
      ["baseline (baseline)", "frozen", "frozen", "frozen", "–"],
      ["full-unet", "full", "frozen", "frozen", "–"],
      ["lora-unet", "LoRA r=4", "frozen", "frozen", "–"],
      ["hybrid", "full", "frozen", "LoRA r=4", "<SAR> (from “radar”, 1 vector)"]
    ])
  })

  it("marks the best value of each metric column and the change against the baseline, from evaluation.json", async () => {
    const names = ["baseline", "full-unet", "lora-unet", "hybrid"]
    const evaluations = await Promise.all(names.map(evaluationOf))
    const table = facts.tables.find((t) => t.id === "metrics")!
    const present = metricColumns.filter((c) => evaluations.some((e) => c.value(e) !== undefined))
    expect(table.header.slice(1).map((h) => h.split(" ")[0])).toEqual(present.map((c) => c.label.split(" ")[0]))
    present.forEach((column, k) => {
      const scores = evaluations.map((e) => badness(column, e))
      const best = Math.min(...scores.filter((s): s is number => s !== undefined))
      const expected = scores.flatMap((s, row) => (s === best ? [[row, k + 1]] : []))
      const marked = facts.bestCells.filter(([, c]) => c === k + 1)
      expect(marked, column.id).toEqual(expected)
    })
    // Wasserstein-1 against the baseline, recomputed: (v − b) / b, better when negative.
    const w = evaluations.map((e) => e.amplitude.distances.wasserstein)
    for (const row of [1, 2, 3]) {
      const change = facts.changeTones.find((c) => c.row === row && c.column === 1)!
      const percent = Number(change.text.replace(/[()% ]/g, "").replace("−", "-").replace("+", ""))
      expect(percent).toBeCloseTo(((w[row] - w[0]) / w[0]) * 100, 0)
      expect(change.tone).toBe(w[row] < w[0] ? "better" : "worse")
    }
    expect(facts.changeTones.some((c) => c.row === 0)).toBe(false)
  })

  it("states run facts from the manifests and the MLflow runs: backend tag, cache keys, run ids, the mlflow ui command", async () => {
    const table = facts.tables.find((t) => t.id === "run-facts")!
    const column = (name: string) => table.header.indexOf(name)
    for (const [i, name] of ["baseline", "full-unet", "lora-unet", "hybrid"].entries()) {
      const row = table.rows[i]
      expect(row[column("backend")]).toBe("none (test stand-ins)")
      expect(row[column("MLflow run")]).toBe(ran.runs.experiments.get(name)!.runId)
      const evaluate = ran.plan.steps.find((s) => s.kind === "evaluate" && s.experiments.includes(name))!
      expect(row[column("evaluate key")]).toBe(evaluate.key)
      expect(row[column("train steps")]).toBe(name === "baseline" ? "–" : String(study.trainSteps))
      expect(row[column("evaluate time")]).toMatch(/^\d+(\.\d)? (ms|s)$/)
    }
    const html = await readFile(join(reportDir, "report.html"), "utf8")
    expect(html).toContain(`mlflow ui --backend-store-uri ${ran.trackingDir}`)
  })

  it("writes the same tables into report.md, whose images all load once the Markdown is rendered", async () => {
    const { page, problems } = await openPage(browser, pathToFileURL(await renderMarkdownPage(join(reportDir, "report.md"), dir)).href)
    const markdown = await markdownFacts(page)
    await page.screenshot({ path: join(screenshots, "report-md-rendered.png"), fullPage: true })
    await page.close()
    expect(problems).toEqual([])
    const htmlTables = facts.tables
    expect(htmlTables.map((t) => t.id)).toEqual(["strategies", "metrics", "texture", "alignment", "run-facts"])
    expect(markdown.tables.map((t) => t.caption)).toEqual(htmlTables.map((t) => t.caption))
    markdown.tables.forEach((table, i) => {
      expect(table.header, htmlTables[i].id).toEqual(htmlTables[i].header)
      expect(table.rows, htmlTables[i].id).toEqual(htmlTables[i].rows)
    })
    // Every chart as an SVG file, and the grid: 4 prompts × (1 real + 4 strategies × 2 samples).
    expect(markdown.images.filter((i) => i.src.startsWith("images/charts/"))).toHaveLength(facts.charts.length)
    expect(markdown.images.filter((i) => !i.src.startsWith("images/charts/"))).toHaveLength(facts.images.length)
    expect(markdown.images.filter((i) => !i.loaded)).toEqual([])
  })

  it("keeps labels apart and colours distinct in a study of ten strategies with long names", async () => {
    // The same evaluations under ten long names: the layout, not the numbers, is under test here.
    const reportStep = ran.plan.steps.find((s) => s.kind === "report")!
    const inputs = reportStep.inputs.map((input) => join(ran.cacheDir, "steps", ran.plan.steps.find((s) => s.id === input.step)!.key))
    const declared = ran.declaration.kind === "study" ? ran.declaration.experiments : []
    const experiments = Array.from({ length: 10 }, (_, i) => ({
      experiment: { ...declared[i % 4], name: `strategy-${i}-lora-unet-rank-16-alpha-32-cosine-schedule-noise-offset`.slice(0, 64) },
      evaluationDir: inputs[i % 4]
    }))
    const outDir = join(dir, "wide-report")
    await Effect.runPromise(
      Effect.flatMap(ReportRenderer, (r) => r.render({ study: "wide", experiments, cacheDir: ran.cacheDir, outDir })).pipe(Effect.provide(reportStudyServices))
    )
    const { page, problems } = await openPage(browser, pathToFileURL(join(outDir, "report.html")).href)
    const wide = await pageFacts(page)
    await page.screenshot({ path: join(screenshots, "wide-report-full.png"), fullPage: true })
    await page.close()
    expect(problems).toEqual([])
    expect(wide.charts.flatMap(labelProblems)).toEqual([])
    expect(wide.charts.filter((c) => c.visibleMarks === 0).map((c) => c.id)).toEqual([])
    expect(new Set(wide.swatches.map((s) => s.colour)).size).toBe(10)
    // Wide studies show one sample per cell.
    expect(wide.images).toHaveLength(4 * (1 + 10))
  })
})

describe("sardine report", () => {
  const cli = join(repoRoot, "bin", "sardine.ts")

  it("renders the same report from the study file and from the cache folder, and prints where it went", async () => {
    const fromStudy = join(dir, "from-study")
    const fromCache = join(dir, "from-cache")
    const a = await run(cli, ["report", ran.file, "--cache-dir", ran.cacheDir, "--out", fromStudy])
    expect(a.stderr).toBe("")
    expect(a.code).toBe(0)
    expect(a.stdout).toContain(join(fromStudy, "report.html"))
    expect(a.stdout).toContain(join(fromStudy, "report.md"))
    const b = await run(cli, ["report", ran.cacheDir, "--out", fromCache])
    expect(b.code).toBe(0)
    const html = await readFile(join(fromStudy, "report.html"), "utf8")
    expect(await readFile(join(fromCache, "report.html"), "utf8")).toBe(html)
    // The MLflow links of the report step's own rendering are kept.
    expect(html).toContain(ran.runs.experiments.get("hybrid")!.runId)
    expect(await readFile(join(fromCache, "report.md"), "utf8")).toBe(await readFile(join(reportDir, "report.md"), "utf8"))
  })

  it("rebuilds the strategies from the generate and train steps when the cache has no report step", async () => {
    const copy = join(dir, "cache-without-report")
    await cp(ran.cacheDir, copy, { recursive: true })
    const reportStep = ran.plan.steps.find((s) => s.kind === "report")!
    await rm(join(copy, "steps", reportStep.key), { recursive: true })
    const out = join(dir, "from-evaluations")
    const result = await run(cli, ["report", copy, "--out", out])
    expect(result.code).toBe(0)
    expect(result.stderr).toContain("no report step in this cache")
    const { page } = await openPage(browser, pathToFileURL(await renderMarkdownPage(join(out, "report.md"), dir)).href)
    const { tables } = await markdownFacts(page)
    await page.close()
    expect(tables.find((t) => t.caption.startsWith("Strategies"))!.rows).toEqual([
      ["baseline (baseline)", "frozen", "frozen", "frozen", "–"],
      ["full-unet", "full", "frozen", "frozen", "–"],
      ["hybrid", "full", "frozen", "LoRA r=4", "<SAR> (from “radar”, 1 vector)"],
      ["lora-unet", "LoRA r=4", "frozen", "frozen", "–"]
    ])
  })

  it("names what is wrong: a folder that is not a cache, a study never run, a corrupt evaluation", async () => {
    const empty = join(dir, "not-a-cache")
    await mkdir(empty, { recursive: true })
    const notCache = await run(cli, ["report", empty, "--out", join(dir, "x")])
    expect(notCache.code).toBe(1)
    expect(notCache.stderr).toContain(`${empty}: is not a sardine cache`)

    const neverRun = await run(cli, ["report", ran.file, "--cache-dir", empty, "--out", join(dir, "y")])
    expect(neverRun.code).toBe(1)
    expect(neverRun.stderr).toContain("has a finished evaluation in this cache")

    const copy = join(dir, "cache-corrupt")
    await cp(ran.cacheDir, copy, { recursive: true })
    const evaluate = ran.plan.steps.find((s) => s.kind === "evaluate" && s.experiments.includes("hybrid"))!
    const broken = join(copy, "steps", evaluate.key, "evaluation.json")
    await writeFile(broken, (await readFile(broken, "utf8")).slice(0, 200))
    const corrupt = await run(cli, ["report", copy, "--out", join(dir, "z")])
    expect(corrupt.code).toBe(1)
    expect(corrupt.stderr).toContain(broken)
    expect(existsSync(join(dir, "z", "report.html"))).toBe(false)
  })

  it("fails as a usage error without a source", async () => {
    const result = await run(cli, ["report"])
    expect(result.code).toBe(2)
  })
})
