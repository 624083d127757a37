import { Effect } from "effect"
import { dirname, join } from "node:path"
import type { StepContext } from "../runner/step-handler.ts"
import { ReportRenderer } from "../services/report-renderer.ts"

/** The study's comparison report, logged to the study's run. */
export const report = (context: StepContext<"report">) =>
  Effect.gen(function*() {
    const renderer = yield* ReportRenderer
    const evaluations = context.inputs("evaluation")
    const { experiments, study } = context.step.config
    // Input i is experiment i's evaluation (identical experiments share one evaluate step).
    const stepsDir = dirname(evaluations[0].dir)
    yield* renderer.render({
      study,
      experiments: experiments.map((experiment, i) => ({ experiment, evaluationDir: evaluations[i].dir })),
      cacheDir: dirname(stepsDir),
      outDir: context.workDir,
      // Without an experiment id (the store has not answered yet), the report has no links to give.
      ...(context.tracking.experimentId === undefined
        ? {}
        : { tracking: { target: context.tracking.target, experimentId: context.tracking.experimentId, runIds: context.tracking.runIds } }),
      ...(context.tracking.backend === undefined ? {} : { backend: context.tracking.backend })
    })
    // report.md shows its charts and grid from images/, so they travel with it.
    yield* context.tracking.artifact(join(context.workDir, "report.html"), "report")
    yield* context.tracking.artifact(join(context.workDir, "report.md"), "report")
    yield* context.tracking.artifact(join(context.workDir, "images"), "report/images")
  })
