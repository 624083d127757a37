/**
 * Speckle against prompt following, per setting (issue 22). Runs the generate and evaluate steps of
 * the chosen experiments of a variant of the demo study (default experiments/demo/speckle-settings.ts:
 * the demo's strategies sampled with other samplers, steps and guidance scales; their trainings are
 * the demo's, so with the demo's cache only sampling runs) through `sardine run --only`, then prints
 * one row per experiment from its evaluate step's output: the generated images' per-image intensity
 * ENL (mean, as the evaluation reports it, and median; framework/metrics/amplitude-statistics.ts)
 * beside the reference's, the SAR CLIP's alignment gap and top-1 retrieval per split
 * (framework/metrics/prompt-following.ts), and the amplitude Wasserstein-1 distance.
 *
 *   npx tsx tools/demo-speckle-settings.ts [--declaration experiments/demo/speckle-settings.ts]
 *       [--match '^(full-unet|hybrid)\.'] [--engine tfjs|torch] [--cache-dir .sardine] [--no-run] [--json]
 *
 * `--match` selects experiments by name (a regular expression); `--no-run` tabulates only what the
 * cache already holds. With `--engine torch`, set SARDINE_TORCH_THREADS=1 on a shared machine.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Schema } from "effect"
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { type Experiment, experimentsOf } from "../framework/declaration/experiment.ts"
import { loadDeclaration } from "../framework/declaration/load.ts"
import { amplitudeStatistics } from "../framework/metrics/amplitude-statistics.ts"
import { planWithFingerprints } from "../framework/plan/input-fingerprints.ts"
import { cacheLayout } from "../framework/runner/cache.ts"
import { decodeEvidence, evaluationFile, type EvaluationResult, evidenceFile } from "../framework/steps/evaluation-result.ts"
import { amplitudeOfPrepared } from "../framework/steps/paired-evaluation.ts"
import { readPreparedIndex, readPreparedPixels } from "../framework/steps/prepared-dataset.ts"
import { option } from "./command-line.ts"

const declarationFile = option("declaration", "experiments/demo/speckle-settings.ts")
const match = new RegExp(option("match", "^(full-unet|hybrid)\\."))
const engine = Schema.decodeUnknownSync(Schema.Literal("tfjs", "torch"))(option("engine", "tfjs"))
const cacheDir = option("cache-dir", ".sardine")
const run = !process.argv.includes("--no-run")

const loaded = await Effect.runPromise(loadDeclaration(declarationFile).pipe(Effect.provide(NodeContext.layer)))
const chosen = experimentsOf(loaded.declaration).filter((e) => match.test(e.name))
if (chosen.length === 0) throw new Error(`no experiment of ${declarationFile} matches ${match}`)

if (run) {
  const only = chosen.map((e) => `${e.name}/evaluate`).join(",")
  const args = ["bin/sardine.js", "run", declarationFile, "--only", only, "--engine", engine, "--cache-dir", cacheDir, "--concurrency", "1"]
  const status = spawnSync(process.execPath, args, { stdio: ["ignore", "inherit", "inherit"] }).status
  if (status !== 0) throw new Error(`sardine run exited with ${status}`)
}

// The keys `sardine run` used: with the fingerprints of the declared folders (base, CLIP).
const { plan } = await Effect.runPromise(planWithFingerprints(loaded, { cacheDir, engine }).pipe(Effect.provide(NodeContext.layer)))
const cache = cacheLayout(cacheDir)
/** An experiment's evaluate step (a step shared by several experiments has the first one's id, so found by its users). */
const evaluateStepOf = (experiment: string) => plan.steps.find((s) => s.kind === "evaluate" && s.experiments.includes(experiment))!
const outputOf = (id: string) => cache.done(plan.steps.find((s) => s.id === id)!.key)

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The reference's per-image ENLs, measured on its prepared scenes as the evaluate step measures them. */
const referenceEnl = (dir: string) =>
  Effect.runPromise(Effect.gen(function*() {
    const index = yield* readPreparedIndex(dir)
    return yield* Effect.forEach(index.samples, (sample) =>
      Effect.flatMap(
        readPreparedPixels(dir, sample),
        (pixels) => Effect.map(amplitudeStatistics(amplitudeOfPrepared(index, pixels, sample.source)), (s) => s.enl)
      ))
  }))

interface Row {
  readonly experiment: string
  readonly images: number
  readonly enlMean: number
  /** The evaluation's bootstrap interval of the mean ENL (its level in evaluation.json's uncertainty). */
  readonly enlInterval: readonly [number, number]
  readonly enlMedian: number
  /** Mean ENL of each prompt's images, in declaration order. */
  readonly enlByPrompt: ReadonlyArray<number>
  readonly gapSeen: number
  readonly gapUnseen: number
  readonly top1Seen: number
  readonly top1Unseen: number
  readonly wasserstein: number
}

const rowOf = (experiment: Experiment): Row | undefined => {
  const dir = cache.done(evaluateStepOf(experiment.name).key)
  if (!existsSync(join(dir, evaluationFile))) return undefined
  const evaluation = JSON.parse(readFileSync(join(dir, evaluationFile), "utf8")) as EvaluationResult
  const evidence = decodeEvidence(JSON.parse(readFileSync(join(dir, evidenceFile), "utf8")))
  const value = (id: string) => evaluation.estimates[id]?.value ?? NaN
  return {
    experiment: experiment.name,
    images: evaluation.generated.images,
    enlMean: evaluation.generated.statistics.enl,
    enlInterval: [evaluation.estimates["statistics.enl"]?.low ?? NaN, evaluation.estimates["statistics.enl"]?.high ?? NaN],
    enlMedian: median(evidence.images.map((i) => i.statistics.enl)),
    enlByPrompt: evaluation.promptReadings.map((r) => r.enl ?? NaN),
    gapSeen: value("prompt_following.gap.seen"),
    gapUnseen: value("prompt_following.gap.unseen"),
    top1Seen: value("prompt_following.top1.seen"),
    top1Unseen: value("prompt_following.top1.unseen"),
    wasserstein: value("amplitude.wasserstein")
  }
}

const rows = chosen.flatMap((e) => rowOf(e) ?? [])
const referenceDir = outputOf(evaluateStepOf(chosen[0]!.name).inputs.find((i) => i.role === "reference")!.step)
const reference = await referenceEnl(referenceDir)
const referenceMean = reference.reduce((a, b) => a + b, 0) / reference.length
const referenceMedian = median(reference)

if (process.argv.includes("--json")) {
  console.log(
    JSON.stringify({ declaration: declarationFile, engine, reference: { images: reference.length, enlMean: referenceMean, enlMedian: referenceMedian }, rows })
  )
} else {
  const f = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "–")
  const prompts = rows[0]?.enlByPrompt.length ?? 0
  console.log(`${declarationFile} on ${engine}; reference: ${reference.length} scenes, per-image ENL mean ${f(referenceMean)}, median ${f(referenceMedian)}`)
  console.log(`ENL ×ref: the mean's ratio to the reference's mean (issue 22's target: ≤ 1.5); chance top-1 = 1 / prompts`)
  console.log("")
  console.log(
    `| experiment | images | ENL mean [95 %] | ×ref | ENL median | ENL by prompt (${prompts}) | gap seen | gap unseen | top-1 seen | top-1 unseen | W1 |`
  )
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
  for (const r of rows) {
    console.log(
      `| ${r.experiment} | ${r.images} | ${f(r.enlMean)} [${f(r.enlInterval[0])}, ${f(r.enlInterval[1])}] | ${f(r.enlMean / referenceMean)} | ${
        f(r.enlMedian)
      } | ${r.enlByPrompt.map((e) => f(e)).join(" · ")} | ${f(r.gapSeen, 1)} | ${f(r.gapUnseen, 1)} | ${f(r.top1Seen)} | ${f(r.top1Unseen)} | ${
        f(r.wasserstein, 3)
      } |`
    )
  }
  const missing = chosen.length - rows.length
  if (missing > 0) console.log(`\n${missing} of ${chosen.length} chosen experiments have no evaluation in ${cacheDir} yet (run without --no-run)`)
}
