import { resumableKinds } from "../../framework/runner/resume-point.ts"
import type { StepKind } from "../../framework/plan/step.ts"

/**
 * What a job SLURM stopped at its time limit left, from its step's work folder: a training that wrote a
 * checkpoint (`checkpoint`, its step) resumes from it on the next `sardine run`; a training stopped before
 * its first checkpoint, and every other step kind (their work folder is emptied when they start), start over.
 */
export const timeLimitReached = (kind: StepKind, limit: string | undefined, checkpoint: number | undefined): string => {
  const stopped = `reached its time limit (resources.${kind}.time ${JSON.stringify(limit ?? "the partition's")}) and was stopped`
  const longer = `declare a longer resources.${kind}.time`
  if (!resumableKinds.has(kind)) return `${stopped}; a ${kind} step does not resume: \`sardine run\` again starts it over (${longer})`
  if (checkpoint === undefined) {
    return `${stopped} before its first checkpoint, so nothing was saved: \`sardine run\` again starts it over (${longer}, or checkpoint more often)`
  }
  return `${stopped}; its checkpoint at step ${checkpoint} is kept: \`sardine run\` again resumes it from there`
}
