import { Effect } from "effect"
import { dirname, join } from "node:path"
import { replicateName } from "../declaration/replicates.ts"
import { reportRole } from "../plan/step.ts"
import type { StepContext } from "../runner/step-handler.ts"
import { writeJsonAtomic } from "./json-files.ts"
import { type ExperimentDirs, renderStudyReport, statisticsMetrics } from "./reported-study.ts"

/** The statistics behind the report (intervals, comparisons, verdicts), next to it. */
export const statisticsFile = "statistics.json"

/**
 * The study's comparison report: reads every replicate's evaluation, evidence, manifests and
 * training log from its inputs, computes the study's statistics, logs them to MLflow (each
 * replicated experiment's summary run, the study's run) and renders report.html and report.md.
 */
export const report = (context: StepContext<"report">) =>
  Effect.gen(function*() {
    const { compare, experiments, replicates, study } = context.step.config
    const dirsOf = (kind: "evaluation" | "samples" | "training", name: string) => context.inputs(reportRole(kind, name))[0]?.dir
    const experimentDirs = experiments.map((experiment, i): ExperimentDirs => ({
      experiment,
      replicates: Array.from({ length: replicates[i]! }, (_, r) => {
        const name = replicateName(experiment.name, r + 1, replicates[i]!)
        const samples = dirsOf("samples", name)
        const training = dirsOf("training", name)
        return {
          name,
          replicate: r + 1,
          evaluation: context.input(reportRole("evaluation", name)).dir,
          ...(samples === undefined ? {} : { samples }),
          ...(training === undefined ? {} : { training })
        }
      })
    }))
    const { statistics } = yield* renderStudyReport({
      study,
      experiments: experimentDirs,
      compare,
      // Inputs are finished steps: <cache>/steps/<key>.
      cacheDir: dirname(dirname(experimentDirs[0]!.replicates[0]!.evaluation)),
      outDir: context.workDir,
      // Without an experiment id (the store has not answered yet), the report has no links to give.
      ...(context.tracking.experimentId === undefined
        ? {}
        : { tracking: { target: context.tracking.target, experimentId: context.tracking.experimentId, runIds: context.tracking.runIds } }),
      ...(context.tracking.backend === undefined ? {} : { backend: context.tracking.backend }),
      progress: (pair, done, total) => context.progress(done, total, `resamples (${pair})`)
    })
    yield* writeJsonAtomic(join(context.workDir, statisticsFile), statistics)
    const metrics = statisticsMetrics(statistics)
    for (const [name, values] of Object.entries(metrics.experiments)) yield* context.tracking.metricsOf(name, 0, values)
    yield* context.tracking.metrics(0, metrics.study)
    // report.md shows its charts and grid from images/, so they travel with it.
    yield* context.tracking.artifact(join(context.workDir, "report.html"), "report")
    yield* context.tracking.artifact(join(context.workDir, "report.md"), "report")
    yield* context.tracking.artifact(join(context.workDir, statisticsFile), "report")
    yield* context.tracking.artifact(join(context.workDir, "images"), "report/images")
  })
