import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option, Schema } from "effect"
import { readdir, readFile, stat } from "node:fs/promises"
import { basename, join, resolve } from "node:path"
import { Experiment, experimentsOf } from "../declaration/experiment.ts"
import { cacheLayout, isDone, outputState, readManifestIn, type StepManifest } from "../runner/cache.ts"
import {
  ReportError,
  ReportRenderer,
  reportRequestFile,
  type ReportedExperiment,
  type ReportedStrategy,
  type SavedReportRequest
} from "../services/report-renderer.ts"
import { cacheDirOption } from "./cache-dir.ts"
import { loadPlan } from "./declaration-plan.ts"

/**
 * `sardine report <study-file | cache-dir>`: renders a study's comparison report from what the
 * cache already holds, never running a step. From a study file, its evaluate steps are found
 * through the plan; from a cache folder, through the report step's manifest there, or, when no
 * report step finished, through the evaluate steps' own manifests.
 */

const source = Args.path({ name: "study-or-cache", exists: "yes" }).pipe(
  Args.withDescription("A study (or experiment) declaration file, or a sardine cache folder")
)
const out = Options.directory("out").pipe(
  Options.optional,
  Options.withDescription("Where report.html, report.md and images/ go (default: ./<study>-report)")
)

/** What the renderer needs, found in the cache. */
interface Found {
  readonly study: string
  readonly cacheDir: string
  readonly experiments: ReadonlyArray<ReportedExperiment>
  /** Tracking and backend of the report step's own rendering, when there was one. */
  readonly saved?: SavedReportRequest
  readonly notes: ReadonlyArray<string>
}

const readSaved = (reportDir: string) =>
  Effect.promise(() =>
    readFile(join(reportDir, reportRequestFile), "utf8").then((t) => JSON.parse(t) as SavedReportRequest, () => undefined)
  )

/**
 * Whether an evaluate step's output can be reported: finished and sound; a damaged one fails the
 * report, naming its file, rather than being left out unnoticed.
 */
const evaluationFound = (cacheDir: string, key: string) =>
  Effect.flatMap(outputState(cacheLayout(cacheDir), key), (state) =>
    state._tag !== "damaged"
      ? Effect.succeed(state._tag === "done")
      : Effect.fail(new ReportError({
        path: join(cacheLayout(cacheDir).done(key), state.files[0]),
        reason: `damaged since its step committed (${state.problems.join("; ")}); \`sardine run\` runs the step again`
      })))

/** The finished evaluate steps of a declaration's plan, one per experiment, in declaration order. */
const fromDeclaration = (file: string, cacheDir: string) =>
  Effect.gen(function*() {
    const { loaded, plan } = yield* loadPlan(file, { cacheDir })
    const cache = cacheLayout(cacheDir)
    const experiments = experimentsOf(loaded.declaration)
    if (experiments.length === 0) {
      return yield* new ReportError({ path: file, reason: `declares a ${loaded.declaration.kind}, which has no experiments to compare` })
    }
    const found: Array<ReportedExperiment> = []
    const missing: Array<string> = []
    for (const experiment of experiments) {
      const step = plan.steps.find((s) => s.kind === "evaluate" && s.experiments.includes(experiment.name))!
      if (yield* evaluationFound(cacheDir, step.key)) found.push({ experiment, evaluationDir: cache.done(step.key) })
      else missing.push(experiment.name)
    }
    if (found.length === 0) {
      return yield* new ReportError({
        path: cacheDir,
        reason: `no experiment of ${plan.name} has a finished evaluation in this cache; run \`sardine run ${file} --cache-dir ${cacheDir}\` first`
      })
    }
    const reportStep = plan.steps.find((s) => s.kind === "report")
    const saved = reportStep !== undefined && (yield* isDone(cache, reportStep.key)) ? yield* readSaved(cache.done(reportStep.key)) : undefined
    const notes = missing.length === 0 ? [] : [`not evaluated yet, left out: ${missing.join(", ")}`]
    return { study: plan.name, cacheDir, experiments: found, notes, ...(saved === undefined ? {} : { saved }) } satisfies Found
  })

/** Every finished step's manifest in a cache folder. */
const manifestsIn = (cacheDir: string) =>
  Effect.gen(function*() {
    const stepsDir = join(cacheDir, "steps")
    const keys = yield* Effect.tryPromise({
      try: () => readdir(stepsDir),
      catch: () => new ReportError({ path: cacheDir, reason: "is not a sardine cache (it has no steps/ folder)" })
    })
    const cache = cacheLayout(cacheDir)
    const manifests = yield* Effect.forEach(keys.sort(), (key) => readManifestIn(cache.done(key)).pipe(Effect.option))
    return manifests.flatMap((m) => (Option.isSome(m) ? [m.value] : []))
  })

const decodeExperiment = Schema.decodeUnknown(Experiment)

/** The report step's declarations: the study as it was run. */
const fromReportManifest = (cacheDir: string, manifest: StepManifest) =>
  Effect.gen(function*() {
    const dir = cacheLayout(cacheDir).done(manifest.key)
    const config = manifest.config as { readonly study: string; readonly experiments: ReadonlyArray<unknown> }
    const experiments = yield* Effect.forEach(config.experiments, (raw, i) =>
      decodeExperiment(raw).pipe(
        Effect.mapError((e) => new ReportError({ path: join(dir, "sardine-step.json"), reason: `config.experiments[${i}] is not a valid experiment: ${e.message}` }))
      ))
    const cache = cacheLayout(cacheDir)
    const evaluations = manifest.inputs.filter((i) => i.role === "evaluation")
    const found: Array<ReportedExperiment> = []
    const missing: Array<string> = []
    for (const [i, experiment] of experiments.entries()) {
      const key = evaluations[i]?.key
      if (key !== undefined && (yield* evaluationFound(cacheDir, key))) found.push({ experiment, evaluationDir: cache.done(key) })
      else missing.push(experiment.name)
    }
    const saved = yield* readSaved(dir)
    const notes = missing.length === 0 ? [] : [`evaluations no longer in the cache, left out: ${missing.join(", ")}`]
    return { study: config.study, cacheDir, experiments: found, notes, ...(saved === undefined ? {} : { saved }) } satisfies Found
  })

/**
 * Without a report step, each experiment's newest evaluate step, its strategy rebuilt from the
 * generate step's config (base, components) and the train step's (budget).
 */
const fromEvaluateManifests = (cacheDir: string, manifests: ReadonlyArray<StepManifest>) =>
  Effect.gen(function*() {
    const byKey = new Map(manifests.map((m) => [m.key, m]))
    const newest = new Map<string, StepManifest>()
    for (const m of manifests.filter((m) => m.kind === "evaluate")) {
      for (const name of m.experiments) {
        const held = newest.get(name)
        if (held === undefined || held.finishedAt < m.finishedAt) newest.set(name, m)
      }
    }
    if (newest.size === 0) {
      return yield* new ReportError({ path: cacheDir, reason: "holds no finished evaluate or report step: nothing to report" })
    }
    const experiments: Array<ReportedExperiment> = []
    const notes: Array<string> = []
    for (const [name, evaluate] of newest) {
      const generate = byKey.get(evaluate.inputs.find((i) => i.role === "samples")?.key ?? "")
      if (generate === undefined) {
        notes.push(`${name}: its generate step is no longer in the cache, left out`)
        continue
      }
      const model = generate.inputs.find((i) => i.role === "model")?.key
      const train = model === undefined ? undefined : byKey.get(model)
      const generateConfig = generate.config as Pick<ReportedStrategy, "base" | "components">
      const strategy: ReportedStrategy = {
        name,
        baseline: model === undefined,
        base: generateConfig.base,
        components: generateConfig.components,
        ...(train === undefined ? {} : { train: (train.config as Pick<ReportedStrategy, "train">).train })
      }
      yield* evaluationFound(cacheDir, evaluate.key)
      experiments.push({ experiment: strategy, evaluationDir: cacheLayout(cacheDir).done(evaluate.key) })
    }
    // The baseline first, then by name: there is no declaration to give an order.
    experiments.sort((a, b) => Number(b.experiment.baseline) - Number(a.experiment.baseline) || a.experiment.name.localeCompare(b.experiment.name))
    notes.push("no report step in this cache: strategies rebuilt from the generate and train steps")
    return { study: `cache ${basename(resolve(cacheDir))}`, cacheDir, experiments, notes } satisfies Found
  })

/** From a cache folder: the newest report step, else the evaluate steps. */
const fromCache = (cacheDir: string) =>
  Effect.gen(function*() {
    const manifests = yield* manifestsIn(cacheDir)
    const reports = manifests.filter((m) => m.kind === "report").sort((a, b) => b.finishedAt.localeCompare(a.finishedAt))
    if (reports.length === 0) return yield* fromEvaluateManifests(cacheDir, manifests)
    const found = yield* fromReportManifest(cacheDir, reports[0])
    const others = reports.slice(1).map((m) => (m.config as { study: string }).study)
    return others.length === 0
      ? found
      : { ...found, notes: [...found.notes, `the cache also holds reports of ${others.join(", ")}; pass a study file to choose`] }
  })

export const reportCommand = Command.make(
  "report",
  { source, out, cacheDir: cacheDirOption },
  ({ cacheDir, out, source }) =>
    Effect.gen(function*() {
      const path = resolve(source)
      const isFolder = yield* Effect.promise(() => stat(path).then((s) => s.isDirectory()))
      const found: Found = isFolder ? yield* fromCache(path) : yield* fromDeclaration(path, cacheDir)
      const outDir = Option.getOrElse(out.pipe(Option.map((o) => resolve(o))), () => resolve(`${found.study.replace(/[^a-zA-Z0-9._-]+/g, "-")}-report`))
      const renderer = yield* ReportRenderer
      const rendered = yield* renderer.render({
        study: found.study,
        experiments: found.experiments,
        cacheDir: found.cacheDir,
        outDir,
        ...(found.saved?.tracking === undefined ? {} : { tracking: found.saved.tracking }),
        ...(found.saved?.backend === undefined ? {} : { backend: found.saved.backend })
      })
      for (const note of found.notes) yield* Console.error(`note: ${note}`)
      yield* Console.log(`${found.study}: ${found.experiments.length} strategies\n  ${rendered.html}\n  ${rendered.markdown}`)
    })
).pipe(
  Command.withDescription(
    "Render a study's comparison report (report.html + report.md) from its finished evaluations in the cache; runs nothing."
  )
)
