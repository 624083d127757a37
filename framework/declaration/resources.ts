import { Schema } from "effect"
import { stepKinds, type StepKind } from "../plan/step.ts"
import { IntegerAtLeast, numberWhere, PositiveNumber } from "./rules.ts"

/**
 * What a step asks of a cluster when it runs as a batch job (the slurm executor). Declared per step kind,
 * with `default` for every kind, on a study and on an experiment (whose entries win for its own steps);
 * the local runner reads only a train step's `processes` (and `gpus`, its default). They are not part of any
 * content key: where a step runs, and on how many processes, changes what it writes by float rounding at most.
 */

const shown = (value: unknown): string => JSON.stringify(value) ?? String(value)

const pattern = (regex: RegExp, rule: string) =>
  Schema.String.annotations({ message: (issue) => `must be ${rule} (got ${shown(issue.actual)})` }).pipe(
    Schema.filter((s) => regex.test(s), { message: (issue) => `must be ${rule} (got ${shown(issue.actual)})` })
  )

/** SLURM's `--mem`: an integer with an optional K, M, G or T suffix (megabytes without one). */
export const MemorySize = pattern(/^[1-9]\d*[KMGT]?$/, `a memory size such as "512M", "16G" or "1T"`)

/** A MemorySize in bytes: K, M, G and T are powers of 1024, as SLURM reads them. */
export const memoryBytes = (size: string): number => {
  const unit = /[KMGT]$/.exec(size)?.[0] ?? "M"
  return Number.parseInt(size, 10) * 1024 ** (1 + "KMGT".indexOf(unit))
}

/** SLURM's `--time` formats: minutes, minutes:seconds, hours:minutes:seconds, days-hours[:minutes[:seconds]]. */
export const TimeLimit = pattern(
  /^(\d+-\d+(:\d+){0,2}|\d+(:\d+){0,2})$/,
  `a SLURM time limit such as "90" (minutes), "4:00:00" (hours:minutes:seconds) or "2-00:00:00" (days-hours:minutes:seconds)`
)

/** A SLURM time limit in seconds. */
export const timeLimitSeconds = (limit: string): number => {
  const [days, rest] = limit.includes("-") ? [Number(limit.split("-")[0]), limit.split("-")[1]!] : [0, limit]
  const parts = rest.split(":").map(Number)
  // Without days: minutes[:seconds] or hours:minutes:seconds; with days: hours[:minutes[:seconds]].
  const [hours, minutes, seconds] = limit.includes("-")
    ? [parts[0] ?? 0, parts[1] ?? 0, parts[2] ?? 0]
    : parts.length === 3
    ? [parts[0]!, parts[1]!, parts[2]!]
    : [0, parts[0] ?? 0, parts[1] ?? 0]
  return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
}

/** GPUs whose dense peak FLOP/s the time plan knows (framework/plan/time-plan.ts, with sources). */
export const GpuName = Schema.Literal("H100", "H100-PCIe", "H200", "A100", "L40S", "RTX4090", "MI300X")
export type GpuName = typeof GpuName.Type

const slurmName = /^[A-Za-z0-9_.-]+$/

export const Partition = pattern(
  /^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$/,
  "a SLURM partition name, or several separated by commas"
)

export const Account = pattern(slurmName, "a SLURM account name (letters, digits, '_', '.', '-')")

export const Qos = pattern(slurmName, "a SLURM QOS name (letters, digits, '_', '.', '-')")

/** SLURM's `--constraint`: node features joined by `&`, `|` or `,`, optionally in brackets or with counts (`a100*2`). */
export const Constraint = pattern(/^[A-Za-z0-9_.\-[\]()&|,*:]+$/, `a SLURM constraint such as "a100" or "h100|h200"`)

export const StepResources = Schema.Struct({
  /** GPUs of the job on each of its nodes (`--gpus-per-node`); 0 asks for none. */
  gpus: Schema.optionalWith(IntegerAtLeast(0), { exact: true }),
  /**
   * Data-parallel processes of a train step on the torch engine, per node (each trains on its slice of every
   * batch; `train.batchSize` is the global batch); default: `gpus` when above 0, else 1. Not part of the step's
   * content key: the numbers differ from one process's only in the order of float sums.
   */
  processes: Schema.optionalWith(IntegerAtLeast(1), { exact: true }),
  /**
   * How a train step's processes hold the model: "none" (the default) replicates it in each; "fsdp" shards the
   * fully trained UNet's weights, gradients and AdamW states over them (torch's FSDP), for a full fine-tune that
   * does not fit one GPU. Torch engine, train steps, two or more processes.
   */
  sharding: Schema.optionalWith(Schema.Literal("none", "fsdp"), { exact: true }),
  /**
   * Nodes of a train step on the torch engine (`--nodes`; the slurm executor only), each running `processes`
   * training processes as SLURM tasks (`--ntasks-per-node`); default 1. `train.batchSize` divides among all of them.
   */
  nodes: Schema.optionalWith(IntegerAtLeast(1), { exact: true }),
  /** CPUs of each process (`--cpus-per-task`): of the job, or of each training process of a train step on several. */
  cpus: Schema.optionalWith(IntegerAtLeast(1), { exact: true }),
  /** Memory of the job on each of its nodes (`--mem`). */
  memory: Schema.optionalWith(MemorySize, { exact: true }),
  /**
   * Memory of each GPU, for `sardine plan --resources`: a train step whose estimated need exceeds it is
   * refused at plan time. Not a SLURM request (pick the GPU model with `constraint`).
   */
  gpuMemory: Schema.optionalWith(MemorySize, { exact: true }),
  /**
   * The GPU model, for the time plan of `sardine plan --resources` (its dense bf16 / fp32 peak from a table).
   * Not a SLURM request (pick the GPU with `constraint`).
   */
  gpu: Schema.optionalWith(GpuName, { exact: true }),
  /** The device's peak TFLOP/s at the step's precision, for a GPU the table lacks (over `gpu`'s). */
  gpuPeakTflops: Schema.optionalWith(PositiveNumber, { exact: true }),
  /** The share of the peak a train step is assumed to reach, for the time plan (default 0.35). */
  utilisation: Schema.optionalWith(numberWhere("a number in (0, 1]", (n) => n > 0 && n <= 1), { exact: true }),
  time: Schema.optionalWith(TimeLimit, { exact: true }),
  partition: Schema.optionalWith(Partition, { exact: true }),
  account: Schema.optionalWith(Account, { exact: true }),
  qos: Schema.optionalWith(Qos, { exact: true }),
  constraint: Schema.optionalWith(Constraint, { exact: true })
})
export type StepResources = typeof StepResources.Type

const perKind = Object.fromEntries(
  stepKinds.map((kind) => [kind, Schema.optionalWith(StepResources, { exact: true })])
) as { readonly [K in StepKind]: Schema.optionalWith<typeof StepResources, { exact: true }> }

/** `default` applies to every step kind; a kind's own entry overrides it field by field. */
export const Resources = Schema.Struct({
  default: Schema.optionalWith(StepResources, { exact: true }),
  ...perKind
})
export type Resources = typeof Resources.Type

/** The processes a train step runs on: the declared count, else one per GPU, else one. */
export const trainProcesses = (resources: StepResources): number =>
  resources.processes ?? (resources.gpus !== undefined && resources.gpus > 0 ? resources.gpus : 1)

/** The nodes a train step runs on: the declared count, else one. */
export const trainNodes = (resources: StepResources): number => resources.nodes ?? 1

/** What a step asks for when nothing is declared: one CPU, no GPU, the cluster's defaults for the rest. */
export const defaultStepResources: StepResources = { cpus: 1, gpus: 0 }

/**
 * The resources of one step kind: built-in defaults, then each of `layers` in turn (a study's, then the
 * experiment's), `default` before the kind's own entry.
 */
export const resourcesFor = (layers: Resources | undefined | ReadonlyArray<Resources | undefined>, kind: StepKind): StepResources => {
  const all: ReadonlyArray<Resources | undefined> = Array.isArray(layers) ? layers : [layers as Resources | undefined]
  return Object.assign({}, defaultStepResources, ...all.flatMap((r) => [r?.default, r?.[kind]]))
}
