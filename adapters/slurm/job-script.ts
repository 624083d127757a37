import type { StepResources } from "../../framework/declaration/resources.ts"
import { shellQuote } from "./shell.ts"

export interface JobOptions {
  readonly name: string
  /** The job's output file (stdout and stderr); `%j` is replaced by the job id. */
  readonly output: string
  /** The folder the job starts in. */
  readonly chdir: string
  readonly resources: StepResources
  /** Jobs that must complete successfully first. */
  readonly after: ReadonlyArray<string>
}

/** sbatch's options for one job: resources as declared, nothing the cluster would not default. */
export const sbatchArguments = (options: JobOptions): ReadonlyArray<string> => {
  const { resources: r } = options
  return [
    `--job-name=${options.name}`,
    `--output=${options.output}`,
    `--chdir=${options.chdir}`,
    ...(r.cpus === undefined ? [] : [`--cpus-per-task=${r.cpus}`]),
    ...(r.gpus === undefined || r.gpus === 0 ? [] : [`--gpus-per-node=${r.gpus}`]),
    ...(r.memory === undefined ? [] : [`--mem=${r.memory}`]),
    ...(r.time === undefined ? [] : [`--time=${r.time}`]),
    ...(r.partition === undefined ? [] : [`--partition=${r.partition}`]),
    ...(r.account === undefined ? [] : [`--account=${r.account}`]),
    ...(r.qos === undefined ? [] : [`--qos=${r.qos}`]),
    ...(r.constraint === undefined ? [] : [`--constraint=${r.constraint}`]),
    // A failed input makes SLURM drop the waiting job instead of keeping it queued forever.
    ...(options.after.length === 0 ? [] : [`--dependency=afterok:${options.after.join(":")}`, "--kill-on-invalid-dep=yes"])
  ]
}

/** A batch script that replaces its shell by the command, so SLURM's signals (scancel, time limit) reach it. */
export const batchScript = (command: ReadonlyArray<string>, comment: string): string =>
  `#!/bin/sh\n# ${comment.replace(/\n/g, " ")}\nexec ${command.map(shellQuote).join(" ")}\n`
