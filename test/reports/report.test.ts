/**
 * The comparison report from a small real study: run through the real runner (production
 * prepare-data, evaluate and report steps; engine stand-ins), opened in a real headless Chromium.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { GLCM_PROPERTIES } from "../../framework/metrics/glcm.ts"
import { EVALUATION_METRICS, evaluationMetrics } from "../../framework/metrics/metric-catalog.ts"
import type { StudyStatistics } from "../../framework/metrics/study-statistics.ts"
import { amplitudeStatistics } from "../../framework/metrics/amplitude-statistics.ts"
import { measurePromptFollowing } from "../../framework/metrics/prompt-following.ts"
import type { GeneratedSample } from "../../framework/services/engine.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { ReportRenderer } from "../../framework/services/report-renderer.ts"
import { ClipScorers } from "../../framework/services/scorer.ts"
import { decodeEvidence, type EvaluationResult } from "../../framework/steps/evaluation-result.ts"
import { amplitudeOfPrepared } from "../../framework/steps/paired-evaluation.ts"
import { readPreparedIndex, readPreparedPixels } from "../../framework/steps/prepared-dataset.ts"
import { loadStudy, statisticsOf } from "../../framework/steps/reported-study.ts"
import { textWidth } from "../../reports/charts/text-width.ts"
import { formatValue } from "../../reports/number-format.ts"
import { mlflowPython } from "../mlflow/mlflow-server.ts"
import { repoRoot, run } from "../support/run-process.ts"
import { launchChromium, openPage, type OpenBrowser } from "./headless-chromium.ts"
import { markdownFacts, renderMarkdownPage } from "./markdown-page.ts"
import { labelProblems, pageFacts, type PageFacts } from "./page-facts.ts"
import { experimentDirsOf, runReportStudy, type RanStudy } from "./report-study.ts"
import { reportStudyServices } from "./stand-in-steps.ts"

const screenshots = join(repoRoot, "test-output", "reports")
/**
 * Four strategies, the hybrid trained with three seeds, compared with the full UNet besides the
 * baseline; eight sampling seeds, so a paired test over noise draws can reach p = 2/2⁸.
 */
const study = {
  name: "report-test",
  strategies: 4,
  seenPrompts: 2,
  unseenPrompts: 2,
  seeds: 8,
  trainSteps: 30,
  size: 32,
  referenceImages: 8,
  replicates: { hybrid: 3 },
  compare: [["hybrid", "full-unet"]] as const,
  resamples: 300
}
const names = ["baseline", "full-unet", "lora-unet", "hybrid"]

let dir = ""
let ran: RanStudy
let browser: OpenBrowser
let reportDir = ""
let facts: PageFacts
let statistics: StudyStatistics

/** The metric table's columns: every measured metric but prompt following, which has a table of its own. */
const metricTableColumns = (of: StudyStatistics) =>
  EVALUATION_METRICS.filter((m) => !m.id.startsWith("prompt_following.") && of.strategies.some((s) => typeof s.estimates[m.id]?.value === "number"))

/** Real scenes the grid shows with `perCell` images a cell: each prompt's matching reference scenes, up to perCell. */
const realPreviews = async (perCell: number) => {
  const evaluation = JSON.parse(await readFile(join(experimentDirsOf(ran)[0]!.replicates[0]!.evaluation, "evaluation.json"), "utf8")) as EvaluationResult
  return evaluation.promptReadings.reduce((n, r) => n + Math.min(perCell, r.reference.scenes), 0)
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sardine-report-"))
  await mkdir(screenshots, { recursive: true })
  ran = await runReportStudy(dir, study)
  const reportStep = ran.plan.steps.find((s) => s.kind === "report")!
  reportDir = join(ran.cacheDir, "steps", reportStep.key)
  statistics = JSON.parse(await readFile(join(reportDir, "statistics.json"), "utf8")) as StudyStatistics
  browser = await launchChromium()
  // The study runs ten trainings and evaluations and the report step's statistics: on a busy machine that takes minutes.
}, 600_000)

afterAll(async () => {
  await browser?.close()
  if (dir !== "") await rm(dir, { recursive: true, force: true })
})

describe("the comparison report of a study", () => {
  it("is the study's report step: every step ran and report.html, report.md and images/ are in its output", () => {
    expect(ran.outcomes.filter((o) => o.status !== "ran").map((o) => `${o.step.id}: ${o.status} ${o.detail ?? ""}`)).toEqual([])
    for (const file of ["report.html", "report.md", "report-request.json", "statistics.json", "images/charts/amplitude-histogram.svg"]) {
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
    await page.locator("table[data-grid=samples]").screenshot({ path: join(screenshots, "sample-grid.png") })
    await page.close()
    expect(problems).toEqual([])

    // Grid: 4 prompts × 4 strategies × 4 seeds, and the real scenes of the prompts' classes; all embedded and decoded.
    expect(facts.images).toHaveLength(4 * 4 * 4 + (await realPreviews(4)))
    expect(facts.images.filter((i) => !(i.complete && i.naturalWidth > 0 && i.dataUri))).toEqual([])

    // Charts: histogram, CDF, one GLCM panel per property, CLIP alignment, one per training metric.
    const ids = facts.charts.map((c) => c.id)
    expect(ids).toEqual(expect.arrayContaining([
      "amplitude-histogram",
      "amplitude-cdf",
      "clip-alignment",
      ...GLCM_PROPERTIES.map((p) => `glcm-${p.toLowerCase()}`),
      "training-loss",
      "training-lr-unet",
      "training-lr-text_encoder",
      "training-lr-token",
      "training-grad_norm",
      "training-images_per_s"
    ]))
    expect(facts.charts).toHaveLength(2 + GLCM_PROPERTIES.length + 1 + 6)
    expect(facts.charts.filter((c) => c.visibleMarks === 0).map((c) => c.id)).toEqual([])
    const histogram = facts.charts.find((c) => c.id === "amplitude-histogram")!
    expect(new Set(histogram.series.map((s) => s.name))).toEqual(new Set(["real (reference)", "baseline", "full-unet", "lora-unet", "hybrid"]))
    expect(facts.charts.flatMap(labelProblems)).toEqual([])
    // Intervals: bands around every strategy's distribution curves and the replicated training curves, error bars on every bar.
    for (const id of ["amplitude-histogram", "amplitude-cdf"]) {
      expect(new Set(facts.charts.find((c) => c.id === id)!.bands.map((b) => b.name)), id).toEqual(new Set(names))
    }
    expect(facts.charts.find((c) => c.id === "training-loss")!.bands.map((b) => b.name)).toEqual(["hybrid"])
    // full-unet declares train.validationLoss: its held-out curve is dashed in the training loss's chart, in its colour, not a chart of its own.
    const loss = facts.charts.find((c) => c.id === "training-loss")!
    const validation = loss.series.filter((s) => s.name.endsWith(" (validation)"))
    expect([...new Set(validation.map((s) => s.name))]).toEqual(["full-unet (validation)"])
    expect(validation.map((s) => s.colour)).toEqual(validation.map(() => loss.series.find((s) => s.name === "full-unet")!.colour))
    expect(ids).not.toContain("training-validation_loss")
    expect(facts.charts.find((c) => c.id === "clip-alignment")!.errorBars).toHaveLength(2 * names.length)
    expect(facts.charts.find((c) => c.id === "glcm-contrast")!.errorBars).toEqual(names)
    // Axis titles name their unit or scale.
    expect(histogram.texts.map((t) => t.text)).toEqual(expect.arrayContaining([
      "normalised amplitude v = A / (mean + 3·std), clipped to [0, 1] (unitless)",
      "fraction of pixels per bin (log scale)"
    ]))
  })

  it("starts the held-out validation curve at step 0, the plot's left edge, before the training loss's first step", async () => {
    const svg = await readFile(join(reportDir, "images/charts/training-loss.svg"), "utf8")
    const left = Number(/<clipPath id="training-loss-clip"><rect x="([\d.]+)"/.exec(svg)?.[1])
    const firstX = (series: string) => Number(new RegExp(`data-series="${series}" d="M([\\d.]+) `).exec(svg)?.[1])
    expect(left).toBeGreaterThan(0)
    expect(firstX("full-unet \\(validation\\)")).toBe(left)
    expect(firstX("full-unet")).toBeGreaterThan(left)
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
    for (const b of facts.charts.flatMap((c) => c.bands)) colours.set(b.name, new Set([...(colours.get(b.name) ?? []), b.colour]))
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

  it("shows every value with its interval, bolds a column's best only when it is significantly better than every other", () => {
    const table = facts.tables.find((t) => t.id === "metrics")!
    const present = metricTableColumns(statistics)
    expect(table.header.slice(1).map((h) => h.split(" ")[0])).toEqual(present.map((c) => c.label.split(" ")[0]))
    expect(table.rows.map((r) => r[0])).toEqual(["baseline (baseline)", "full-unet", "lora-unet", "hybrid (3 seeds)"])
    for (const row of table.rows) for (const cell of row.slice(1)) expect(cell).toMatch(/^\S+ \[\S+, \S+\]/)
    const notSignificant: Array<string> = []
    present.forEach((column, k) => {
      const best = statistics.best[column.id]
      const expected = best?.significant ? [[names.indexOf(best.strategy), k + 1]] : []
      expect(facts.bestCells.filter(([, c]) => c === k + 1), column.id).toEqual(expected)
      if (best !== undefined && !best.significant) notSignificant.push(column.label)
    })
    // In this study no metric's best beats every other strategy significantly (the hybrid's three
    // seeds leave Welch's test two degrees of freedom): no bold. The texture table has real bests.
    expect(notSignificant.length).toBeGreaterThan(0)
    const texture = facts.tables.find((t) => t.id === "texture")!
    const realRows = texture.rows.length - names.length
    const expectedBold = GLCM_PROPERTIES.flatMap((p, k) => {
      const best = statistics.best[`texture.${p}`]
      return best?.significant ? [[realRows + names.indexOf(best.strategy), k + 1]] : []
    })
    expect(expectedBold.length).toBeGreaterThan(0)
    expect(facts.boldCells.texture).toEqual(expectedBold.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!))
    expect(table.rows.length).toBe(4)
    // The value shown is the best's: lowest distance, highest CLIP score.
    const wasserstein = statistics.best[evaluationMetrics.wasserstein.id]!
    const values = statistics.strategies.map((s) => s.estimates[evaluationMetrics.wasserstein.id]!.value)
    expect(wasserstein.strategy).toBe(names[values.indexOf(Math.min(...values))])
  })

  it("tones each change against the baseline by that comparison's verdict: n.s. where it finds no real difference", () => {
    const w = statistics.strategies.map((s) => s.estimates[evaluationMetrics.wasserstein.id]!.value)
    for (const row of [1, 2, 3]) {
      const change = facts.changeTones.find((c) => c.row === row && c.column === 1)!
      const percent = Number(change.text.replace(/[()% ]|n\.s\.|,/g, "").replace("−", "-").replace("+", ""))
      expect(percent).toBeCloseTo(((w[row]! - w[0]!) / w[0]!) * 100, 0)
      const verdict = statistics.comparisons.find((c) =>
        c.a === names[row] && c.b === "baseline"
      )!.lines.find((l) => l.id === evaluationMetrics.wasserstein.id)!.verdict
      expect(change.tone, names[row]).toBe(verdict === "better" ? "better" : verdict === "worse" ? "worse" : "unclear")
      expect(change.text.includes("n.s."), names[row]).toBe(change.tone === "unclear")
    }
    expect(facts.changeTones.some((c) => c.row === 0)).toBe(false)
  })

  it("answers which differences are real: each strategy against the baseline and the declared pair, with intervals, Holm p-values and verdicts", () => {
    const verdictTables = facts.tables.filter((t) => t.id.startsWith("verdicts-"))
    expect(verdictTables.map((t) => t.caption)).toEqual([
      "full-unet against baseline (the baseline)",
      "lora-unet against baseline (the baseline)",
      "hybrid against baseline (the baseline)",
      "hybrid against full-unet (declared)"
    ])
    for (const [i, comparison] of statistics.comparisons.entries()) {
      const table = verdictTables[i]!
      expect(table.header).toEqual([
        "metric",
        comparison.a,
        comparison.b,
        `difference (${comparison.a} − ${comparison.b})`,
        "95 % interval",
        "p",
        "p (Holm)",
        "verdict"
      ])
      comparison.lines.forEach((line, r) => {
        const verdict = table.rows[r]!.at(-1)
        const real = line.pAdjusted <= 0.05
        expect(verdict, `${table.caption}: ${line.label}`).toBe(
          !real
            ? "no detectable difference"
            : `${comparison.a} ${(line.direction === "higher" ? line.difference > 0 : line.difference < 0) ? "better" : "worse"}`
        )
      })
      // Holm: adjusted p-values are at least the raw ones and never above 1.
      for (const line of comparison.lines) expect(line.pAdjusted).toBeGreaterThanOrEqual(line.p)
    }
    // K = 1 against K = 1 pairs up by noise draw; the replicated hybrid is compared over its training seeds.
    expect(statistics.comparisons.map((c) => c.test)).toEqual(["paired permutation", "paired permutation", "welch", "welch"])
    expect(statistics.comparisons[0]!.permutations).toMatchObject({ count: 256, exact: true })
    expect(verdictTables[2]!.rows.length).toBeGreaterThan(10)
  })

  it("does not bold a best that is not significant: the same values, re-rendered with the verdict flipped, move the bold", async () => {
    const loaded = await Effect.runPromise(loadStudy(experimentDirsOf(ran)).pipe(Effect.provide(NodeContext.layer)))
    const recomputed = await Effect.runPromise(statisticsOf(loaded, study.compare))
    const columns = metricTableColumns(recomputed).filter((m) => recomputed.best[m.id] !== undefined)
    const followingColumns = EVALUATION_METRICS.filter((m) => m.id.startsWith("prompt_following.") && recomputed.best[m.id] !== undefined)
    expect(recomputed.best).toEqual(JSON.parse(JSON.stringify(statistics.best)))
    // Every column's verdict flipped: the bold must follow it, not the values.
    const flipped: StudyStatistics = {
      ...recomputed,
      best: Object.fromEntries(Object.entries(recomputed.best).map(([id, b]) => [id, { ...b, significant: !b.significant }]))
    }
    const outDir = join(dir, "flipped-report")
    await Effect.runPromise(
      Effect.flatMap(
        ReportRenderer,
        (r) => r.render({ study: "flipped", experiments: loaded.experiments, statistics: flipped, cacheDir: ran.cacheDir, outDir })
      )
        .pipe(Effect.provide(reportStudyServices))
    )
    const { page, problems } = await openPage(browser, pathToFileURL(join(outDir, "report.html")).href)
    const flippedFacts = await pageFacts(page)
    await page.close()
    expect(problems).toEqual([])
    const table = flippedFacts.tables.find((t) => t.id === "metrics")!
    expect(table.rows).toEqual(facts.tables.find((t) => t.id === "metrics")!.rows)
    const columnOf = (label: string) => table.header.findIndex((h) => h.startsWith(`${label} `))
    for (const column of columns) {
      const best = flipped.best[column.id]!
      const k = columnOf(column.label)
      expect(flippedFacts.bestCells.filter(([, c]) => c === k), column.id).toEqual(best.significant ? [[names.indexOf(best.strategy), k]] : [])
    }
    // Each table's note names its columns left without bold: the best there is not significantly better.
    const notesOf = async (folder: string) =>
      (await readFile(join(folder, "report.md"), "utf8")).split("\n").filter((l) => l.includes("No bold in")).map((l) => l.replace(/\\(.)/g, "$1"))
    const unmarked = (best: StudyStatistics["best"], of: typeof columns) => of.filter((c) => !best[c.id]!.significant).map((c) => c.label)
    const expectedNotes = (best: StudyStatistics["best"]) =>
      [unmarked(best, columns), unmarked(best, followingColumns)].filter((u) => u.length > 0).map((u) => `No bold in ${u.join(", ")}:`)
    expect(unmarked(recomputed.best, columns).length).toBeGreaterThan(0)
    for (const [folder, best] of [[reportDir, recomputed.best], [outDir, flipped.best]] as const) {
      const notes = await notesOf(folder)
      const expected = expectedNotes(best)
      expect(notes).toHaveLength(expected.length)
      expected.forEach((text, i) => expect(notes[i]).toContain(text))
    }
  })

  it("shows prompt following per split next to the CLIP alignment, with k and the chance levels, and logs it to MLflow", async () => {
    const evaluation = JSON.parse(await readFile(join(experimentDirsOf(ran)[0]!.replicates[0]!.evaluation, "evaluation.json"), "utf8"))
    const { chance, k, prompts } = evaluation.alignment.promptFollowing
    // Two seen and two unseen prompts; k = 3 by default.
    expect({ prompts, k, chance }).toEqual({ prompts: 4, k: 3, chance: { top1: 0.25, topk: 0.75 } })
    // A table of its own, so that the metric table does not scroll sideways; the metric table keeps the absolute CLIP scores.
    const metrics = facts.tables.find((t) => t.id === "metrics")!
    expect(metrics.header).toContain(`${evaluationMetrics.clipUnseen.label} ↑`)
    expect(metrics.header.filter((h) => /^(gap|top-1|top-k) /.test(h))).toEqual([])
    const table = facts.tables.find((t) => t.id === "prompt-following")!
    expect(table.rows.map((r) => r[0])).toEqual(["baseline (baseline)", "full-unet", "lora-unet", "hybrid (3 seeds)"])
    for (const row of table.rows) for (const cell of row.slice(1)) expect(cell).toMatch(/^\S+ \[\S+, \S+\]/)
    expect(table.header).toEqual([
      "strategy",
      "gap seen ↑",
      "gap unseen ↑",
      "top-1 seen ↑ chance 0.25",
      "top-1 unseen ↑ chance 0.25",
      "top-k seen ↑ k = 3, chance 0.75",
      "top-k unseen ↑ k = 3, chance 0.75"
    ])
    // Its values are the study's estimates.
    const hybridRow = table.rows[3]!
    const gapSeen = statistics.strategies.find((s) => s.name === "hybrid")!.estimates[evaluationMetrics.gapSeen.id]!.value
    expect(hybridRow[1]!.split(" ")[0]).toBe(formatValue(gapSeen))
    const markdown = await readFile(join(reportDir, "report.md"), "utf8")
    expect(markdown).toContain("(P = 4, k = 3)")
    // Without alignment.promptFollowing, the alignment CLIP judged it, and the note says so.
    expect(markdown).toContain(`Judged by the CLIP ${evaluation.alignment.clip}.`)
    // Over all prompts too, with intervals, in evaluation.json; every image's top-1 hit lies in [0, 1].
    for (const id of ["prompt_following.gap", "prompt_following.top1", "prompt_following.topk"]) {
      expect(Number.isFinite(evaluation.estimates[id].low), id).toBe(true)
    }
    expect(evaluation.estimates["prompt_following.top1"].value).toBeGreaterThanOrEqual(0)
    expect(evaluation.estimates["prompt_following.top1"].value).toBeLessThanOrEqual(1)
    const { stdout } = await promisify(execFile)(mlflowPython, [join(repoRoot, "tools/check_local_store.py"), ran.trackingDir], { maxBuffer: 64 * 1024 * 1024 })
    const runs = (JSON.parse(stdout) as { experiments: Array<{ runs: Array<Record<string, any>> }> }).experiments.flatMap((e) => e.runs)
    const baseline = runs.find((r) => r.name === "baseline")!
    expect(Object.keys(baseline.metrics)).toEqual(expect.arrayContaining([
      "prompt_following.gap.seen",
      "prompt_following.top1.unseen.low",
      "prompt_following.topk",
      "prompt_following.top1.chance"
    ]))
    expect(baseline.metrics["prompt_following.gap"][0][2]).toBeCloseTo(evaluation.estimates["prompt_following.gap"].value, 12)
    // The summary run of the replicated strategy carries the mean over its seeds.
    expect(Object.keys(runs.find((r) => r.name === "hybrid")!.metrics)).toContain("prompt_following.gap.seed_sd")
  })

  it("lays out the samples by prompt: the same seeds in every column, real scenes of the prompt's class, and a reading line the metrics give", async () => {
    const dirs = experimentDirsOf(ran).map((d) => d.replicates[0]!)
    const evaluations = await Promise.all(dirs.map(async (d) => JSON.parse(await readFile(join(d.evaluation, "evaluation.json"), "utf8")) as EvaluationResult))
    const evidence = await Promise.all(dirs.map(async (d) => decodeEvidence(JSON.parse(await readFile(join(d.evaluation, "evidence.json"), "utf8")))))
    // The reference set as prepared, read here directly: its captions and each image's ENL.
    const evaluateStep = ran.plan.steps.find((s) => s.kind === "evaluate" && s.experiments.includes("baseline"))!
    const referenceId = evaluateStep.inputs.find((i) => i.role === "reference")!.step
    const referenceDir = join(ran.cacheDir, "steps", ran.plan.steps.find((s) => s.id === referenceId)!.key)
    const index = await Effect.runPromise(readPreparedIndex(referenceDir))
    const referenceEnl = await Promise.all(index.samples.map(async (sample) => {
      const pixels = await Effect.runPromise(readPreparedPixels(referenceDir, sample))
      return (await Effect.runPromise(amplitudeStatistics(amplitudeOfPrepared(index, pixels, sample.source)))).enl
    }))
    const meanOf = (values: ReadonlyArray<number>) => {
      const finite = values.filter(Number.isFinite)
      return finite.reduce((a, b) => a + b, 0) / finite.length
    }

    // Rows: seen then unseen in declared order; the first two name scenes the synthetic reference holds, the unseen ones scenes it lacks.
    const rows = [
      { text: "SAR image of a harbour with ships near a bridge", scene: "harbour", caption: /^SAR image of a harbour\b/ },
      { text: "SAR image of farmland with crop fields crossed by a road", scene: "farmland", caption: /^SAR image of farmland\b/ },
      { text: "SAR image of an airport with parked aircraft", scene: "airport", caption: undefined },
      { text: "SAR image of a wind farm at sea", scene: "wind farm", caption: undefined }
    ]
    expect(facts.grid.map((r) => r.index)).toEqual([0, 1, 2, 3])
    const seeds = [0, 1, 2, 3]

    // Each strategy's prompt × image CLIP scores, by the metric, with the scorer the evaluate step loads.
    const scores = await Effect.runPromise(
      Effect.scoped(Effect.gen(function*() {
        const io = yield* ImageIO
        const scorer = yield* (yield* ClipScorers).load(join(repoRoot, "test/fixtures/clip"))
        return yield* Effect.forEach(dirs, (d) =>
          Effect.gen(function*() {
            const samples = JSON.parse(yield* Effect.promise(() => readFile(join(d.samples!, "samples.json"), "utf8"))) as ReadonlyArray<GeneratedSample>
            const images = yield* scorer.embedImages(yield* Effect.forEach(samples, (sample) => io.read(join(d.samples!, sample.tiff))))
            // The scorer reads the learned token as "SAR" (the evaluate step's rule).
            const texts = rows.map((r) => r.text)
            const own = samples.map((sample) => texts.indexOf(sample.prompt.replace("<SAR>", "SAR")))
            const measured = yield* measurePromptFollowing(images, yield* scorer.embedTexts(texts), own, 3)
            return { samples, matrix: measured.scores }
          }))
      })).pipe(Effect.provide(reportStudyServices))
    )

    rows.forEach((expected, r) => {
      const row = facts.grid[r]!
      expect(row.label).toContain(expected.text)
      expect(row.label).toContain(`seeds ${seeds.join(", ")}`)
      // Real column: the first reference scenes captioned as the prompt's scene, in reference order; none when the reference has none.
      const matching = expected.caption === undefined ? [] : index.samples.flatMap((s, i) => (expected.caption.test(s.caption) ? [i] : []))
      if (r < 2) expect(matching.length, expected.scene).toBeGreaterThan(0)
      expect(row.cells[0], expected.scene).toEqual(matching.slice(0, 4).map((i) => index.samples[i]!.caption))
      expect(row.readings[0]).toBe(
        matching.length === 0
          ? `no ${expected.scene} scene in the reference set`
          : `${expected.scene}: ${matching.length} scene${matching.length === 1 ? "" : "s"} · ENL ${formatValue(meanOf(matching.map((i) => referenceEnl[i]!)))}`
      )
      // Each strategy: its samples of this prompt for seeds 0–3, and the reading from its own images.
      names.forEach((name, c) => {
        const { matrix, samples } = scores[c]!
        const mine = samples.flatMap((sample, i) => (sample.promptIndex === r ? [i] : []))
        expect(row.cells[c + 1], name).toEqual(seeds.map((seed) => `${name}, seed ${seed}: ${samples[mine[0]!]!.declaredPrompt}`))
        const enl = meanOf(evidence[c]!.images.filter((image) => image.promptIndex === r).map((image) => image.statistics.enl))
        expect(evaluations[c]!.promptReadings[r]!.enl).toBeCloseTo(enl, 12)
        // How often each prompt scores highest among the row's images (ties shared).
        const firsts = rows.map(() => 0)
        for (const i of mine) {
          const line = Array.from(matrix.subarray(i * rows.length, (i + 1) * rows.length))
          const top = line.flatMap((v, p) => (v === Math.max(...line) ? [p] : []))
          for (const p of top) firsts[p]! += 1 / top.length / mine.length
        }
        const best = Math.max(...firsts)
        const winners = rows.flatMap((x, p) => (firsts[p] === best ? [x.scene] : []))
        expect(row.readings[c + 1], `${name}, ${expected.scene}`).toBe(
          `top-1 ${winners.join(" / ")} ${Math.round(best * 100)} %${firsts[r] === best ? " ✓" : ""} · ENL ${formatValue(enl)}`
        )
        // The own prompt's share of first places is the images' mean top-1 retrieval.
        const top1 = evidence[c]!.images.filter((image) => image.promptIndex === r).map((image) => image.following!.top1)
        expect(firsts[r]).toBeCloseTo(top1.reduce((a, b) => a + b, 0) / top1.length, 12)
      })
    })

    // report.md has the same reading lines.
    const markdown = (await readFile(join(reportDir, "report.md"), "utf8")).split("\n").filter((l) => l.startsWith("| ↳ reading |"))
    // (A share's "%" is joined to its number by a no-break space, which the page's text reads as a space.)
    const cellsOf = (line: string) => line.replace(/\u00a0/g, " ").split(" | ").slice(1).map((c) => c.replace(/ \|$/, "").replace(/\\(.)/g, "$1"))
    expect(markdown.map(cellsOf)).toEqual(facts.grid.map((r) => r.readings))
  })

  it("logs each replicate as a child run of its experiment, tagged with its index, and the intervals' bounds as metrics (read by MLflow's own client)", async () => {
    const { stdout } = await promisify(execFile)(mlflowPython, [join(repoRoot, "tools/check_local_store.py"), ran.trackingDir], { maxBuffer: 64 * 1024 * 1024 })
    const runs = (JSON.parse(stdout) as { experiments: Array<{ runs: Array<Record<string, any>> }> }).experiments.flatMap((e) => e.runs)
    const byName = (name: string) => runs.find((r) => r.name === name)!
    const hybrid = byName("hybrid")
    for (const r of [1, 2, 3]) {
      const replicate = byName(`hybrid#${r}`)
      expect(replicate.parent_run_id).toBe(hybrid.run_id)
      expect(replicate.tags).toMatchObject({ "sardine.replicate": String(r), "sardine.replicates": "3" })
      // Each replicate's own evaluation: the metric and its interval.
      for (const key of ["amplitude.wasserstein", "amplitude.wasserstein.low", "amplitude.wasserstein.high"]) {
        expect(Object.keys(replicate.metrics)).toContain(key)
      }
    }
    expect(byName("hybrid#2").params["train.seed"]).not.toBe(byName("hybrid#1").params["train.seed"])
    // The experiment's summary run: the mean over its seeds, the interval's bounds, the spread between seeds.
    const mean = statistics.strategies.find((s) => s.name === "hybrid")!.estimates[evaluationMetrics.wasserstein.id]!
    expect(hybrid.metrics["amplitude.wasserstein"][0][2]).toBeCloseTo(mean.value, 12)
    expect(hybrid.metrics["amplitude.wasserstein.low"][0][2]).toBeCloseTo(mean.low, 12)
    expect(hybrid.metrics["amplitude.wasserstein.high"][0][2]).toBeCloseTo(mean.high, 12)
    expect(hybrid.metrics["amplitude.wasserstein.seed_sd"][0][2]).toBeCloseTo(mean.seedSpread!, 12)
    expect(hybrid.metrics.replicates[0][2]).toBe(3)
    // A run trained once carries its evaluation's bounds; the study's run each comparison's verdict numbers.
    expect(Object.keys(byName("full-unet").metrics)).toEqual(expect.arrayContaining(["amplitude.wasserstein.low", "amplitude.wasserstein.high"]))
    expect(Object.keys(byName("report-test").metrics)).toEqual(expect.arrayContaining([
      "compare/hybrid/full-unet/amplitude.wasserstein.p_holm",
      "compare/full-unet/baseline/amplitude.wasserstein.difference"
    ]))
  })

  it("reports the spread between training seeds and each seed's value for the replicated strategy", () => {
    const table = facts.tables.find((t) => t.id === "replicates")!
    expect(table.rows.map((r) => r[0])).toEqual(["hybrid (3 seeds)"])
    const hybrid = statistics.strategies.find((s) => s.name === "hybrid")!
    expect(hybrid.replicates).toBe(3)
    const w = hybrid.estimates[evaluationMetrics.wasserstein.id]!
    expect(w.method).toBe("t")
    expect(w.replicateValues).toHaveLength(3)
    expect(w.value).toBeCloseTo(w.replicateValues!.reduce((a, b) => a + b, 0) / 3, 12)
    expect(table.rows[0]![1]).toMatch(/^sd \S+ \(\S+, \S+, \S+\)$/)
  })

  it("states run facts per replicate from the manifests and the MLflow runs: backend tag, cache keys, run ids, the mlflow ui command", async () => {
    const table = facts.tables.find((t) => t.id === "run-facts")!
    const column = (name: string) => table.header.indexOf(name)
    for (const [i, name] of ["baseline", "full-unet", "lora-unet", "hybrid#1", "hybrid#2", "hybrid#3"].entries()) {
      const row = table.rows[i]!
      expect(row[column("run")]).toBe(name)
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
    expect(htmlTables.map((t) => t.id)).toEqual([
      "strategies",
      "metrics",
      "prompt-following",
      "replicates",
      "verdicts-full-unet-vs-baseline",
      "verdicts-lora-unet-vs-baseline",
      "verdicts-hybrid-vs-baseline",
      "verdicts-hybrid-vs-full-unet",
      "texture",
      "alignment",
      "run-facts"
    ])
    expect(markdown.tables.map((t) => t.caption)).toEqual(htmlTables.map((t) => t.caption))
    markdown.tables.forEach((table, i) => {
      expect(table.header, htmlTables[i]!.id).toEqual(htmlTables[i]!.header)
      expect(table.rows, htmlTables[i]!.id).toEqual(htmlTables[i]!.rows)
    })
    // Every chart as an SVG file, and the grid's images.
    expect(markdown.images.filter((i) => i.src.startsWith("images/charts/"))).toHaveLength(facts.charts.length)
    expect(markdown.images.filter((i) => !i.src.startsWith("images/charts/"))).toHaveLength(facts.images.length)
    expect(markdown.images.filter((i) => !i.loaded)).toEqual([])
  })

  it("keeps labels apart and colours distinct in a study of ten strategies with long names", async () => {
    // The same evaluations under ten long names: the layout, not the numbers, is under test here.
    const dirs = experimentDirsOf(ran)
    // No baseline among the copies: the layout needs no comparisons, so none are computed.
    const loaded = await Effect.runPromise(
      loadStudy(Array.from({ length: 10 }, (_, i) => ({
        experiment: { ...dirs[i % 4]!.experiment, baseline: false, name: `strategy-${i}-lora-unet-rank-16-alpha-32-cosine-schedule-noise-offset`.slice(0, 64) },
        replicates: dirs[i % 4]!.replicates
      }))).pipe(Effect.provide(NodeContext.layer))
    )
    const outDir = join(dir, "wide-report")
    const wideStatistics = await Effect.runPromise(statisticsOf(loaded, []))
    await Effect.runPromise(
      Effect.flatMap(
        ReportRenderer,
        (r) => r.render({ study: "wide", experiments: loaded.experiments, statistics: wideStatistics, cacheDir: ran.cacheDir, outDir })
      )
        .pipe(Effect.provide(reportStudyServices))
    )
    const { page, problems } = await openPage(browser, pathToFileURL(join(outDir, "report.html")).href)
    const wide = await pageFacts(page)
    await page.screenshot({ path: join(screenshots, "wide-report-full.png"), fullPage: true })
    await page.close()
    expect(problems).toEqual([])
    expect(wide.charts.flatMap(labelProblems)).toEqual([])
    expect(wide.charts.filter((c) => c.visibleMarks === 0).map((c) => c.id)).toEqual([])
    expect(new Set(wide.swatches.map((s) => s.colour)).size).toBe(10)
    // Wide studies show two seeds per cell, and as many real scenes.
    expect(wide.images).toHaveLength(4 * 10 * 2 + (await realPreviews(2)))
  })
})

/** Each `sardine report` recomputes the study's statistics in a new process: minutes on a busy machine. */
const cliTimeout = 300_000

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
    expect(html).toContain(ran.runs.experiments.get("hybrid#1")!.runId)
    // The statistics are recomputed from the cache, seeded as declared: the same numbers as the report step's.
    expect(await readFile(join(fromStudy, "report.md"), "utf8")).toBe(await readFile(join(reportDir, "report.md"), "utf8"))
    expect(await readFile(join(fromCache, "report.md"), "utf8")).toBe(await readFile(join(reportDir, "report.md"), "utf8"))
  }, cliTimeout)

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
  }, cliTimeout)

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
    const evaluate = ran.plan.steps.find((s) => s.kind === "evaluate" && s.experiments.includes("hybrid#1"))!
    const broken = join(copy, "steps", evaluate.key, "evaluation.json")
    await writeFile(broken, (await readFile(broken, "utf8")).slice(0, 200))
    const corrupt = await run(cli, ["report", copy, "--out", join(dir, "z")])
    expect(corrupt.code).toBe(1)
    expect(corrupt.stderr).toContain(broken)
    expect(existsSync(join(dir, "z", "report.html"))).toBe(false)
  }, cliTimeout)

  it("fails as a usage error without a source", async () => {
    const result = await run(cli, ["report"])
    expect(result.code).toBe(2)
  })
})
