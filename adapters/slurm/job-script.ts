import { type StepResources, trainNodes, trainProcesses } from "../../framework/declaration/resources.ts"
import { engineOf, type Step } from "../../framework/plan/step.ts"
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
  /** A train step's processes as SLURM tasks: `perNode` on each of `nodes` nodes (see trainingTasks). */
  readonly tasks?: TrainingTasks
}

export interface TrainingTasks {
  readonly nodes: number
  readonly perNode: number
}

/**
 * The tasks of a train step on several processes or nodes (torch engine), which the job's srun starts as its
 * ranks; undefined for a step that runs as one process. `cpus`, `gpus` and `memory` stay per task, per node, per node.
 */
export const trainingTasks = (step: Step, resources: StepResources): TrainingTasks | undefined => {
  if (step.kind !== "train" || engineOf(step) !== "torch") return undefined
  const tasks = { nodes: trainNodes(resources), perNode: trainProcesses(resources) }
  return tasks.nodes * tasks.perNode > 1 ? tasks : undefined
}

/** The job script's environment that makes the torch worker start its ranks with srun (adapters/torch/worker, slurm_ranks.py). */
export const srunEnvironment: Readonly<Record<string, string>> = { SARDINE_TORCH_LAUNCHER: "srun" }

/** sbatch's options for one job: resources as declared, nothing the cluster would not default. */
export const sbatchArguments = (options: JobOptions): ReadonlyArray<string> => {
  const { resources: r } = options
  return [
    `--job-name=${options.name}`,
    `--output=${options.output}`,
    `--chdir=${options.chdir}`,
    ...(options.tasks === undefined ? [] : [`--nodes=${options.tasks.nodes}`, `--ntasks-per-node=${options.tasks.perNode}`]),
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

/**
 * A batch script that replaces its shell by the command, so SLURM's signals (scancel, time limit) reach it,
 * after exporting `environment`.
 */
export const batchScript = (command: ReadonlyArray<string>, comment: string, environment: Readonly<Record<string, string>> = {}): string => {
  const exports = Object.entries(environment).map(([name, value]) => `export ${name}=${shellQuote(value)}\n`).join("")
  return `#!/bin/sh\n# ${comment.replace(/\n/g, " ")}\n${exports}exec ${command.map(shellQuote).join(" ")}\n`
}
