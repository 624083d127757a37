/**
 * `sardine evaluate` on folders and `sardine report --add`: a tiny real study (real runner, production
 * prepare-data / evaluate steps, engine stand-ins) whose reference is a real imagefolder; its baseline's
 * samples evaluated by the command give the evaluate step's numbers exactly; a plain folder of another
 * generator's images is evaluated too, and both sit in the study's report, opened in headless Chromium.
 * The commands run in-process (as test/cli-generate does) with the real services.
 */
import { Command, HelpDoc, ValidationError } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Cause, Effect, Exit, Layer } from "effect"
import { existsSync } from "node:fs"
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { DatasetsLive } from "../../adapters/data/datasets-live.ts"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { OnnxClipScorersLive } from "../../adapters/onnx/onnx-clip-scorer.ts"
import { WeightsLive } from "../../adapters/safetensors/weights-listing.ts"
import { ModelArchitectureLive } from "../../adapters/tfjs/model-architecture-live.ts"
import { EngineEnvironmentsLive } from "../../adapters/torch/python-environment.ts"
import { evaluateCommand } from "../../framework/cli/evaluate.ts"
import { reportCommand } from "../../framework/cli/report.ts"
import { imageFolder, synthetic } from "../../framework/declaration/dataset.ts"
import { isTemporaryName } from "../../framework/files/atomic-write.ts"
import { plainProgress } from "../../framework/runner/progress.ts"
import { Datasets } from "../../framework/services/datasets.ts"
import type { EvaluationResult } from "../../framework/steps/evaluation-result.ts"
import { ReportRendererLive } from "../../reports/report-renderer-live.ts"
import { repoRoot } from "../support/run-process.ts"
import { launchChromium, openPage, type OpenBrowser } from "./headless-chromium.ts"
import { pageFacts } from "./page-facts.ts"
import { runReportStudy, type RanStudy } from "./report-study.ts"

const clip = `${repoRoot}/test/fixtures/clip`
const screenshots = join(repoRoot, "test-output", "reports")
const layer = Layer.mergeAll(
  NodeContext.layer,
  ImageIOLive,
  plainProgress(() => {}),
  DatasetsLive.pipe(Layer.provide(ImageIOLive)),
  OnnxClipScorersLive,
  ReportRendererLive.pipe(Layer.provide(ImageIOLive)),
  // The report command plans the study file: its engines, weights and architecture are looked up, never run.
  EngineEnvironmentsLive,
  WeightsLive,
  ModelArchitectureLive
)

const cli = (command: "evaluate" | "report", args: ReadonlyArray<string>): Promise<Exit.Exit<void, unknown>> => {
  const argv = ["node", "sardine", ...args]
  return command === "evaluate"
    ? Effect.runPromiseExit(Effect.provide(Command.run(evaluateCommand, { name: "sardine", version: "test" })(argv), layer))
    : Effect.runPromiseExit(Effect.provide(Command.run(reportCommand, { name: "sardine", version: "test" })(argv), layer))
}

const failure = (exit: Exit.Exit<unknown, unknown>) => (Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "succeeded")

/** The usage error's text, or what happened instead. */
const usageOf = (exit: Exit.Exit<unknown, unknown>) => {
  const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
  return error?._tag === "Some" && ValidationError.isValidationError(error.value) ? HelpDoc.toAnsiText(error.value.error) : failure(exit)
}

const json = async <A>(file: string) => JSON.parse(await readFile(file, "utf8")) as A

/** The study's settings as `sardine evaluate` options (report-study.ts declares them). */
const settings = ["--bins", "64", "--levels", "16", "--angles", "0,90", "--resamples", "100", "--clip", clip, "--size", "32"]

let dir = ""
let ran: RanStudy
let referenceDir = ""
let browser: OpenBrowser
const stepDir = (kind: string, name: string) => join(ran.cacheDir, "steps", ran.plan.steps.find((s) => s.kind === kind && s.experiments.includes(name))!.key)

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sardine-external-"))
  referenceDir = join(dir, "real")
  await Effect.runPromise(
    Effect.provide(Effect.flatMap(Datasets, (d) => d.writeSynthetic(synthetic({ n: 4, size: 32, seed: 99, looks: 4 }), referenceDir)), layer)
  )
  ran = await runReportStudy(dir, {
    name: "external-test",
    strategies: 2,
    seenPrompts: 1,
    unseenPrompts: 1,
    seeds: 2,
    trainSteps: 4,
    size: 32,
    referenceImages: 4,
    resamples: 100,
    reference: imageFolder(referenceDir, { unit: "amplitude", resolution: { size: 32 } })
  })
  browser = await launchChromium()
}, 300_000)

afterAll(async () => {
  await browser?.close()
  if (dir !== "") await rm(dir, { recursive: true, force: true })
})

describe("sardine evaluate and sardine report --add", () => {
  it("on a study's generated samples, gives the evaluate step's numbers exactly", async () => {
    expect(ran.outcomes.filter((o) => o.status !== "ran").map((o) => `${o.step.id}: ${o.status}`)).toEqual([])
    const out = join(dir, "baseline-again")
    const exit = await cli("evaluate", [stepDir("generate", "baseline"), "--reference", referenceDir, ...settings, "--out", out])
    expect(failure(exit)).toBe("succeeded")
    const step = await json<EvaluationResult>(join(stepDir("evaluate", "baseline"), "evaluation.json"))
    const command = await json<EvaluationResult>(join(out, "evaluation.json"))
    const { experiments: _e, lineage: _l, previews: stepPreviews, ...stepNumbers } = step
    const { experiments: _ce, lineage, previews, ...commandNumbers } = command
    expect(commandNumbers).toEqual(stepNumbers)
    expect(command.alignment?.prompts.length).toBe(2)
    expect(Object.keys(command.estimates)).toContain("embedding.fid_clip")
    expect(previews.generated.map((p) => [p.prompt, p.seed])).toEqual(stepPreviews.generated.map((p) => [p.prompt, p.seed]))
    expect(lineage.generate).toBe(`folder:${stepDir("generate", "baseline")}`)
    // The evidence comparisons resample is the step's too, but for the reference set's name (its content here).
    const { referenceKey, ...evidence } = await json<Record<string, unknown>>(join(out, "evidence.json"))
    const { referenceKey: stepKey, ...stepEvidence } = await json<Record<string, unknown>>(join(stepDir("evaluate", "baseline"), "evidence.json"))
    expect(evidence).toEqual(stepEvidence)
    expect(referenceKey).toMatch(/^images-[0-9a-f]{32}$/)
    expect(referenceKey).not.toBe(stepKey)
  }, 120_000)

  it("prints a table of every metric with its interval, or with --json the evaluation; without --out it writes nothing", async () => {
    const printed = async (args: ReadonlyArray<string>) => {
      const log = vi.spyOn(console, "log").mockImplementation(() => {})
      try {
        expect(failure(await cli("evaluate", [stepDir("generate", "baseline"), "--reference", referenceDir, ...settings, ...args]))).toBe("succeeded")
        return log.mock.calls.map((call) => call.join(" ")).join("\n")
      } finally {
        log.mockRestore()
      }
    }
    const step = await json<EvaluationResult>(join(stepDir("evaluate", "baseline"), "evaluation.json"))
    const printedJson = JSON.parse(await printed(["--json"])) as EvaluationResult
    expect(printedJson.estimates).toEqual(step.estimates)
    const text = await printed([])
    const wasserstein = step.estimates["amplitude.wasserstein"]!
    const fmt = (x: number) => Number(x.toPrecision(4)).toString()
    expect(text).toMatch(
      new RegExp(`^Wasserstein-1 +${fmt(wasserstein.value)} +\\[${fmt(wasserstein.low)}, ${fmt(wasserstein.high)}\\] +lower is better$`, "m")
    )
    expect(text).toMatch(/^ENL +\S+ +\[\S+, \S+\] +closer to the reference's \S+ is better$/m)
    expect(text).toMatch(/^CLIP seen /m)
    expect((await readdir(tmpdir())).filter((name) => name.startsWith("sardine-evaluate-"))).toEqual([])
  }, 120_000)

  it("evaluates a plain folder with its metadata.jsonl captions as prompts; both sit in the study's report, marked external", async () => {
    const other = join(dir, "other-generator")
    await Effect.runPromise(
      Effect.provide(Effect.flatMap(Datasets, (d) => d.writeSynthetic(synthetic({ n: 3, size: 48, seed: 5, looks: 2 }), other)), layer)
    )
    const out = join(dir, "gan")
    const exit = await cli("evaluate", [other, "--reference", referenceDir, ...settings, "--out", out])
    expect(failure(exit)).toBe("succeeded")
    const evaluation = await json<EvaluationResult>(join(out, "evaluation.json"))
    expect(evaluation.generated.images).toBe(3)
    expect(evaluation.alignment?.prompts.map((p) => p.prompt)).toEqual(
      (await readFile(join(other, "metadata.jsonl"), "utf8")).trim().split("\n").map((l) => (JSON.parse(l) as { text: string }).text)
    )
    expect((await readdir(dir)).filter(isTemporaryName)).toEqual([])

    const reportDir = join(dir, "report")
    const report = await cli("report", [
      ran.file,
      "--cache-dir",
      ran.cacheDir,
      "--add",
      `gan=${out}`,
      "--add",
      `baseline-again=${join(dir, "baseline-again")}`,
      "--out",
      reportDir
    ])
    expect(failure(report)).toBe("succeeded")
    const { page, problems } = await openPage(browser, pathToFileURL(join(reportDir, "report.html")).href)
    const facts = await pageFacts(page)
    await mkdir(screenshots, { recursive: true })
    await page.screenshot({ path: join(screenshots, "report-external.png"), fullPage: true })
    await page.close()
    expect(problems).toEqual([])
    const strategies = facts.tables.find((t) => t.id === "strategies")!
    expect(strategies.rows.map((r) => r[0])).toEqual(["baseline (baseline)", "full-unet", "gan (external)", "baseline-again (external)"])
    expect(strategies.rows[2]?.slice(1).every((cell) => cell === "–")).toBe(true)
    expect(facts.tables.find((t) => t.id === "metrics")!.rows.map((r) => r[0])).toEqual([
      "baseline (baseline)",
      "full-unet",
      "gan (external)",
      "baseline-again (external)"
    ])
    const histogram = facts.charts.find((c) => c.id === "amplitude-histogram")!
    expect(new Set(histogram.series.map((s) => s.name))).toEqual(new Set(["real (reference)", "baseline", "full-unet", "gan", "baseline-again"]))
    expect(facts.images.filter((i) => !(i.complete && i.naturalWidth > 0))).toEqual([])
    const markdown = await readFile(join(reportDir, "report.md"), "utf8")
    expect(markdown).toContain(`gan (external): evaluated by \`sardine evaluate\`, from ${out}.`)
    expect(markdown).toContain("External evaluations have no training")
    // Judged against the same real images as the study, so compared with its strategies, never refused as another reference set.
    expect(markdown).not.toContain("different reference sets")
  }, 180_000)

  it("every bad option is a usage error that says what is wrong", async () => {
    const images = stepDir("generate", "baseline")
    const notEmpty = join(dir, "not-empty")
    await mkdir(notEmpty, { recursive: true })
    await writeFile(join(notEmpty, "x"), "")
    const badPrompts = join(dir, "bad.jsonl")
    await writeFile(badPrompts, "{\"file_name\": \"a.png\"}\n")
    const fewPrompts = join(dir, "few.jsonl")
    await writeFile(fewPrompts, "{\"file_name\": \"a.png\", \"text\": \"x\"}\n")
    await Effect.runPromise(
      Effect.provide(Effect.flatMap(Datasets, (d) => d.writeSynthetic(synthetic({ n: 1, size: 32, seed: 7 }), join(dir, "plain-source"))), layer)
    )
    // Images alone, no metadata.jsonl.
    const plain = join(dir, "plain-source", "sar")
    const noEvaluation = join(dir, "no-evaluation")
    await mkdir(noEvaluation, { recursive: true })
    const evaluation = stepDir("evaluate", "baseline")
    const evaluateCases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [["--normalisation", "gamma"], /--normalisation/],
      [["--normalisation", "db-window:min=5,max=1"], /--normalisation \(max\): must be greater than min \(5\) \(got 1\)/],
      [["--normalisation", "percentile:low"], /--normalisation: "low" is not KEY=VALUE/],
      [["--bins", "1"], /--bins: must be an integer ≥ 2 \(got 1\)/],
      [["--levels", "1"], /--levels: must be an integer ≥ 2 \(got 1\)/],
      [["--angles", "0,x"], /--angles \(1\): must be an angle in \[0, 360\) degrees/],
      [["--distances", "0"], /--distances \(0\): must be an integer ≥ 1 \(got 0\)/],
      [["--resamples", "10"], /--resamples: must be an integer ≥ 100 \(got 10\)/],
      [["--level", "2"], /--level: must be a number in \(0\.5, 1\)/],
      [["--floor-db", "3"], /--floor-db: must be a number of dB < 0/],
      [["--out", notEmpty], /--out: .*not-empty exists and is not empty/],
      [["--prompts", badPrompts], /--prompts: .*bad\.jsonl line 1 needs "file_name" and "text" strings/],
      [["--prompts", fewPrompts], /--prompts: .*few\.jsonl has no prompt for/],
      [["--judge", clip], /--judge: judges prompt following beside --clip; give --clip too/]
    ]
    const wrong: Array<string> = []
    for (const [args, message] of evaluateCases) {
      const text = usageOf(await cli("evaluate", [images, "--reference", referenceDir, ...args]))
      if (!message.test(text)) wrong.push(`${args.join(" ")}: ${text}`)
    }
    expect(usageOf(await cli("evaluate", [plain, "--reference", plain]))).toMatch(/--reference: the same folder as the images/)
    expect(usageOf(await cli("evaluate", [plain, "--reference", referenceDir, "--prompts", fewPrompts]))).toMatch(/few\.jsonl has no prompt for scene-000000/)
    expect(usageOf(await cli("evaluate", [join(dir, "nowhere"), "--reference", referenceDir]))).toMatch(/nowhere' does not exist|must exist/)

    const reportCases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [["--add", "gan"], /--add gan: expected NAME=DIR/],
      [["--add", `x=${noEvaluation}`], /--add x: .*no-evaluation holds no evaluation\.json/],
      [["--add", `baseline=${evaluation}`], /--add baseline: external-test already has a strategy named baseline/],
      [["--add", `g=${evaluation}`, "--add", `g=${evaluation}`], /--add g: given twice/]
    ]
    for (const [args, message] of reportCases) {
      const text = usageOf(await cli("report", [ran.file, "--cache-dir", ran.cacheDir, "--out", join(dir, "never"), ...args]))
      if (!message.test(text)) wrong.push(`${args.join(" ")}: ${text}`)
    }
    expect(wrong).toEqual([])
    expect(existsSync(join(dir, "never"))).toBe(false)
  }, 180_000)
})
