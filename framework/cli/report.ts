import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Console, Effect, Option, Schema } from "effect"
import { basename, join, resolve } from "node:path"
import { declaredComponents } from "../declaration/adaptation.ts"
import { Experiment, experimentsOf } from "../declaration/experiment.ts"
import { replicateName, replicatesOfExperiment } from "../declaration/replicates.ts"
import { readDirectoryIfPresent, readFileStringIfPresent } from "../files/if-present.ts"
import { reportRole, type StepConfigs } from "../plan/step.ts"
import { cacheLayout, isDone, manifestName, outputState, readManifestIn, type StepManifest } from "../runner/cache.ts"
import { ReportError, reportRequestFile, type ReportedStrategy, type SavedReportRequest } from "../services/report-renderer.ts"
import { evaluationFile } from "../steps/evaluation-result.ts"
import { type ExperimentDirs, renderStudyReport, type ReplicateDirs } from "../steps/reported-study.ts"
import { cacheDirOption } from "./cache-dir.ts"
import { loadPlan } from "./declaration-plan.ts"
import { engineOption } from "./engine-option.ts"

/**
 * `sardine report <study-file | cache-dir>`: renders a study's comparison report from what the
 * cache already holds, never running a step (its statistics are recomputed, seeded as declared,
 * so they are the report step's). From a study file, its evaluate steps are found
 * through the plan; from a cache folder, through the report step's manifest there, or, when no
 * report step finished, through the evaluate steps' own manifests.
 */

const source = Args.path({ name: "study-or-cache", exists: "yes" }).pipe(
  Args.withDescription("A study (or experiment) declaration file, or a sardine cache folder")
)
const add = Options.text("add").pipe(
  Options.repeated,
  Options.withDescription("An external evaluation to report next to the strategies, NAME=DIR: a folder `sardine evaluate --out DIR` wrote (repeatable)")
)
const out = Options.directory("out").pipe(
  Options.optional,
  Options.withDescription("Where report.html, report.md and images/ go (default: ./<study>-report)")
)

/** What the report needs, found in the cache. */
interface Found {
  readonly study: string
  readonly cacheDir: string
  readonly experiments: ReadonlyArray<ExperimentDirs>
  readonly compare: ReadonlyArray<readonly [string, string]>
  /** Tracking and backend of the report step's own rendering, when there was one. */
  readonly saved?: SavedReportRequest
  readonly notes: ReadonlyArray<string>
}

const failedOn = (path: string, what: string) => (e: PlatformError) => new ReportError({ path, reason: `${what}: ${e.message}` })

/** The request the report step rendered with; undefined when it saved none. */
export const readSaved = (reportDir: string): Effect.Effect<SavedReportRequest | undefined, ReportError, FileSystem.FileSystem> => {
  const file = join(reportDir, reportRequestFile)
  return readFileStringIfPresent(file).pipe(
    Effect.mapError(failedOn(file, "cannot read the saved report request")),
    Effect.flatMap(Option.match({
      onNone: () => Effect.succeed(undefined),
      onSome: (text) =>
        Effect.try({
          try: () => JSON.parse(text) as SavedReportRequest,
          catch: (e) => new ReportError({ path: file, reason: `the saved report request is not valid JSON: ${(e as Error).message}` })
        })
    }))
  )
}

/**
 * Whether an evaluate step's output can be reported: finished and sound; a damaged one fails the
 * report, naming its file, rather than being left out unnoticed.
 */
const evaluationFound = (cacheDir: string, key: string) =>
  Effect.flatMap(outputState(cacheLayout(cacheDir), key), (state) =>
    state._tag !== "damaged"
      ? Effect.succeed(state._tag === "done")
      : Effect.fail(
        new ReportError({
          path: join(cacheLayout(cacheDir).done(key), state.files[0] ?? ""),
          reason: `damaged since its step committed (${state.problems.join("; ")}); \`sardine run\` runs the step again`
        })
      ))

/** The finished steps of each replicate of a declaration's experiments, in declaration order. */
const fromDeclaration = (file: string, cacheDir: string, engine: Option.Option<"tfjs" | "torch" | "auto">) =>
  Effect.gen(function*() {
    const { loaded, plan } = yield* loadPlan(file, { engine, cacheDir })
    const { declaration } = loaded
    const cache = cacheLayout(cacheDir)
    const experiments = experimentsOf(declaration)
    if (experiments.length === 0) {
      return yield* new ReportError({ path: file, reason: `declares a ${declaration.kind}, which has no experiments to compare` })
    }
    const done = (kind: string, name: string) =>
      Effect.gen(function*() {
        const step = plan.steps.find((s) => s.kind === kind && s.experiments.includes(name))
        if (step === undefined) return undefined
        const finished = kind === "evaluate" ? yield* evaluationFound(cacheDir, step.key) : yield* isDone(cache, step.key)
        return finished ? cache.done(step.key) : undefined
      })
    const found: Array<ExperimentDirs> = []
    const missing: Array<string> = []
    for (const experiment of experiments) {
      const replicates: Array<ReplicateDirs> = []
      for (const { name, replicate } of replicatesOfExperiment(experiment, declaration)) {
        const evaluation = yield* done("evaluate", name)
        if (evaluation === undefined) {
          missing.push(name)
          continue
        }
        const samples = yield* done("generate", name)
        const training = yield* done("train", name)
        replicates.push({ name, replicate, evaluation, ...(samples === undefined ? {} : { samples }), ...(training === undefined ? {} : { training }) })
      }
      if (replicates.length > 0) found.push({ experiment, replicates })
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
    const compare = declaration.kind === "study" ? declaration.compare : []
    return { study: plan.name, cacheDir, experiments: found, compare, notes, ...(saved === undefined ? {} : { saved }) } satisfies Found
  })

/** Every finished step's manifest in a cache folder. */
const manifestsIn = (cacheDir: string) =>
  Effect.gen(function*() {
    const stepsDir = join(cacheDir, "steps")
    const fs = yield* FileSystem.FileSystem
    const listed = yield* readDirectoryIfPresent(stepsDir).pipe(Effect.mapError(failedOn(stepsDir, "cannot list the finished steps")))
    if (Option.isNone(listed)) return yield* new ReportError({ path: cacheDir, reason: "is not a sardine cache (it has no steps/ folder)" })
    const cache = cacheLayout(cacheDir)
    // An output folder without a manifest is the leftover of a crash during an older commit: not output.
    const manifests = yield* Effect.forEach([...listed.value].sort(), (key) =>
      Effect.gen(function*() {
        const file = join(cache.done(key), manifestName)
        if (!(yield* fs.exists(file).pipe(Effect.mapError(failedOn(file, "cannot read the step manifest"))))) return []
        return [yield* readManifestIn(cache.done(key)).pipe(Effect.mapError((e) => new ReportError({ path: e.path, reason: e.reason })))]
      }))
    return manifests.flat()
  })

const decodeExperiment = Schema.decodeUnknown(Experiment)

/** The report step's declarations and inputs: the study as it was run. */
const fromReportManifest = (cacheDir: string, manifest: StepManifest) =>
  Effect.gen(function*() {
    const cache = cacheLayout(cacheDir)
    const dir = cache.done(manifest.key)
    const config = manifest.config as StepConfigs["report"]
    const experiments = yield* Effect.forEach(config.experiments as ReadonlyArray<unknown>, (raw, i) =>
      decodeExperiment(raw).pipe(
        Effect.mapError((e) =>
          new ReportError({ path: join(dir, "sardine-step.json"), reason: `config.experiments[${i}] is not a valid experiment: ${e.message}` })
        )
      ))
    const keyOf = (role: string) => manifest.inputs.find((i) => i.role === role)?.key
    const found: Array<ExperimentDirs> = []
    const missing: Array<string> = []
    for (const [i, experiment] of experiments.entries()) {
      const count = config.replicates?.[i] ?? 1
      const replicates: Array<ReplicateDirs> = []
      for (let r = 1; r <= count; r++) {
        const name = replicateName(experiment.name, r, count)
        const at = (kind: "evaluation" | "samples" | "training") => {
          const key = keyOf(reportRole(kind, name))
          if (key === undefined) return Effect.succeed(undefined)
          const finished = kind === "evaluation" ? evaluationFound(cacheDir, key) : isDone(cache, key)
          return Effect.map(finished, (d) => (d ? cache.done(key) : undefined))
        }
        const evaluation = yield* at("evaluation")
        if (evaluation === undefined) {
          missing.push(name)
          continue
        }
        const samples = yield* at("samples")
        const training = yield* at("training")
        replicates.push({ name, replicate: r, evaluation, ...(samples === undefined ? {} : { samples }), ...(training === undefined ? {} : { training }) })
      }
      if (replicates.length > 0) found.push({ experiment, replicates })
    }
    const saved = yield* readSaved(dir)
    const notes = missing.length === 0 ? [] : [`evaluations no longer in the cache, left out: ${missing.join(", ")}`]
    return {
      study: config.study,
      cacheDir,
      experiments: found,
      compare: config.compare ?? [],
      notes,
      ...(saved === undefined ? {} : { saved })
    } satisfies Found
  })

/**
 * Without a report step, each experiment's newest evaluate step per replicate, its strategy
 * rebuilt from the generate step's config (base, adaptation) and the train step's (budget).
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
    const cache = cacheLayout(cacheDir)
    const byExperiment = new Map<string, { strategy: ReportedStrategy; replicates: Array<ReplicateDirs> }>()
    const notes: Array<string> = []
    for (const [name, evaluate] of newest) {
      const generate = byKey.get(evaluate.inputs.find((i) => i.role === "samples")?.key ?? "")
      if (generate === undefined) {
        notes.push(`${name}: its generate step is no longer in the cache, left out`)
        continue
      }
      const model = generate.inputs.find((i) => i.role === "model")?.key
      const train = model === undefined ? undefined : byKey.get(model)
      const generateConfig = generate.config as StepConfigs["generate"]
      // Replicates run as <experiment>#<r>.
      const [experiment, replicate] = name.split("#") as [string, string?] // split gives at least one part
      const held = byExperiment.get(experiment) ?? {
        strategy: {
          name: experiment,
          baseline: model === undefined,
          base: generateConfig.base,
          components: declaredComponents(generateConfig.adaptation),
          ...(train === undefined ? {} : { train: (train.config as Pick<ReportedStrategy, "train">).train })
        },
        replicates: []
      }
      yield* evaluationFound(cacheDir, evaluate.key)
      held.replicates.push({
        name,
        replicate: replicate === undefined ? 1 : Number(replicate),
        evaluation: cache.done(evaluate.key),
        samples: cache.done(generate.key),
        ...(train === undefined ? {} : { training: cache.done(train.key) })
      })
      byExperiment.set(experiment, held)
    }
    const experiments = [...byExperiment.values()].map(({ replicates, strategy }) => ({
      experiment: strategy,
      replicates: replicates.sort((a, b) => a.replicate - b.replicate)
    }))
    // The baseline first, then by name: there is no declaration to give an order.
    experiments.sort((a, b) => Number(b.experiment.baseline) - Number(a.experiment.baseline) || a.experiment.name.localeCompare(b.experiment.name))
    notes.push("no report step in this cache: strategies rebuilt from the generate and train steps")
    return { study: `cache ${basename(resolve(cacheDir))}`, cacheDir, experiments, compare: [], notes } satisfies Found
  })

/** From a cache folder: the newest report step, else the evaluate steps. */
const fromCache = (cacheDir: string) =>
  Effect.gen(function*() {
    const manifests = yield* manifestsIn(cacheDir)
    const reports = manifests.filter((m) => m.kind === "report").sort((a, b) => b.finishedAt.localeCompare(a.finishedAt))
    const [newest, ...older] = reports
    if (newest === undefined) return yield* fromEvaluateManifests(cacheDir, manifests)
    const found = yield* fromReportManifest(cacheDir, newest)
    const others = older.map((m) => (m.config as { study: string }).study)
    return others.length === 0
      ? found
      : { ...found, notes: [...found.notes, `the cache also holds reports of ${others.join(", ")}; pass a study file to choose`] }
  })

const invalid = (message: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(message)))

/** Each `--add NAME=DIR`, checked: a name of its own, a folder with an evaluation.json. */
const externalsOf = (adds: ReadonlyArray<string>) =>
  Effect.forEach(adds, (text) =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const at = text.indexOf("=")
      const [name, dir] = at < 0 ? [text, ""] : [text.slice(0, at).trim(), resolve(text.slice(at + 1))]
      if (at < 0 || name === "" || at === text.length - 1) {
        return yield* invalid(`--add ${text}: expected NAME=DIR (an evaluation folder \`sardine evaluate --out DIR\` wrote)`)
      }
      if (name.includes("#")) return yield* invalid(`--add ${text}: a name cannot hold '#' (replicates are named <experiment>#<r>)`)
      const file = join(dir, evaluationFile)
      if (!(yield* fs.exists(file).pipe(Effect.mapError(failedOn(file, "cannot read the evaluation"))))) {
        return yield* invalid(`--add ${name}: ${dir} holds no ${evaluationFile} (write one with \`sardine evaluate IMAGES --reference REAL --out ${dir}\`)`)
      }
      return { name, dir }
    }))

/** An external evaluation as the report takes a strategy: one run, no training, marked external. */
const externalDirs = (found: Found, externals: ReadonlyArray<{ readonly name: string; readonly dir: string }>) =>
  Effect.gen(function*() {
    const names = new Set<string>()
    for (const { name } of externals) {
      if (found.experiments.some((e) => e.experiment.name === name)) {
        return yield* invalid(`--add ${name}: ${found.study} already has a strategy named ${name}; give the external evaluation another name`)
      }
      if (names.has(name)) return yield* invalid(`--add ${name}: given twice`)
      names.add(name)
    }
    const frozen = { _tag: "frozen" } as const
    const base = found.experiments[0]?.experiment.base
    if (base === undefined) return yield* invalid(`--add: ${found.study} has no strategy to report the external evaluations beside`)
    return externals.map(({ dir, name }): ExperimentDirs => ({
      experiment: {
        name,
        baseline: false,
        // Not used for an external one (the tables show it as external), but a strategy has a base.
        base,
        components: { unet: frozen, vae: frozen, textEncoders: frozen },
        external: dir
      },
      replicates: [{ name, replicate: 1, evaluation: dir }]
    }))
  })

export const reportCommand = Command.make(
  "report",
  { source, add, out, cacheDir: cacheDirOption, engine: engineOption },
  ({ add, cacheDir, engine, out, source }) =>
    Effect.gen(function*() {
      const path = resolve(source)
      const externals = yield* externalsOf(add)
      const fs = yield* FileSystem.FileSystem
      const isFolder = (yield* fs.stat(path)).type === "Directory"
      const studyFound: Found = isFolder ? yield* fromCache(path) : yield* fromDeclaration(path, cacheDir, engine)
      const found: Found = { ...studyFound, experiments: [...studyFound.experiments, ...(yield* externalDirs(studyFound, externals))] }
      const outDir = Option.getOrElse(out.pipe(Option.map((o) => resolve(o))), () => resolve(`${found.study.replace(/[^a-zA-Z0-9._-]+/g, "-")}-report`))
      const { rendered } = yield* renderStudyReport({
        study: found.study,
        experiments: found.experiments,
        compare: found.compare,
        cacheDir: found.cacheDir,
        outDir,
        ...(found.saved?.tracking === undefined ? {} : { tracking: found.saved.tracking }),
        ...(found.saved?.backend === undefined ? {} : { backend: found.saved.backend })
      })
      for (const note of found.notes) yield* Console.error(`note: ${note}`)
      const strategies = `${studyFound.experiments.length} strategies${
        externals.length === 0 ? "" : ` and ${externals.length} external evaluation${externals.length === 1 ? "" : "s"}`
      }`
      yield* Console.log(`${found.study}: ${strategies}\n  ${rendered.html}\n  ${rendered.markdown}`)
    })
).pipe(
  Command.withDescription(
    "Render a study's comparison report (report.html + report.md) from its finished evaluations in the cache, with external evaluations (--add) beside its strategies; runs nothing."
  )
)
