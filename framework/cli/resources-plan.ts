import { Effect, Schema } from "effect"
import { resolveAdaptation } from "../declaration/adaptation.ts"
import { architectureFolder } from "../declaration/architecture-rules.ts"
import { experimentsOf } from "../declaration/experiment.ts"
import type { LoadedDeclaration } from "../declaration/load.ts"
import { resolutionOf } from "../declaration/normalise.ts"
import { experimentOfReplicate } from "../declaration/replicates.ts"
import { memoryBytes, timeLimitSeconds, trainNodes, trainProcesses } from "../declaration/resources.ts"
import { type MemoryPlan, memoryPlan, type MemoryTerms, shortfall, termName } from "../plan/memory-plan.ts"
import { stepResources } from "../plan/step-resources.ts"
import { duration, type TimePlan, timePlan, timeWarning } from "../plan/time-plan.ts"
import type { Plan } from "../plan/step.ts"
import { ModelArchitecture } from "../services/model-architecture.ts"
import { unreadableReason } from "./architecture-check.ts"

/** A train step's memory plan, or why there is none (its base's configs cannot be read yet). */
export interface StepMemory {
  readonly step: string
  readonly experiment: string
  readonly architecture: string
  readonly plan?: MemoryPlan
  readonly unreadable?: string
  /** `resources.train.gpuMemory` in bytes, when declared. */
  readonly gpuMemory?: number
  /** Absent when no GPU memory is declared (or no plan). */
  readonly fits?: boolean
  /** Where it does not fit: the largest term and what to change. */
  readonly largest?: keyof MemoryTerms
  readonly advice?: ReadonlyArray<string>
  /** FLOPs per step and, with a declared GPU or peak, the estimated time (time-plan.ts). */
  readonly time?: TimePlan
  /** The estimate exceeds `resources.train.time` (a warning, not a refusal: the utilisation is assumed). */
  readonly timeWarning?: string
}

/** Train steps that need more memory than their declared GPU has, each with its largest term and what to change. */
export class StepsDoNotFit extends Schema.TaggedError<StepsDoNotFit>()("StepsDoNotFit", {
  problems: Schema.Array(Schema.String)
}) {
  override get message() {
    return `train steps that do not fit their declared GPU memory (resources.train.gpuMemory):\n${this.problems.map((p) => `  ${p}`).join("\n")}`
  }
}

/**
 * The memory plan of every train step of `plan` (the torch engine's rules; memory-plan.ts); with
 * `declaredOnly`, of those whose resources declare a `gpuMemory` (the others have nothing to check).
 */
export const planMemory = (loaded: LoadedDeclaration, plan: Plan, declaredOnly = false): Effect.Effect<Array<StepMemory>, never, ModelArchitecture> =>
  Effect.gen(function*() {
    const architectures = yield* ModelArchitecture
    const experiments = experimentsOf(loaded.declaration)
    const result: Array<StepMemory> = []
    for (const step of plan.steps) {
      if (step.kind !== "train") continue
      const resources = stepResources(loaded.declaration, step)
      if (declaredOnly && resources.gpuMemory === undefined) continue
      const name = experimentOfReplicate(step.experiments[0] ?? "")
      const index = experiments.findIndex((e) => e.name === name)
      const experiment = experiments[index]
      if (experiment === undefined || experiment.train === undefined) continue
      const folder = architectureFolder(experiment, experiments.slice(0, index), loaded.directory)
      const read = yield* Effect.either(architectures.parameters(folder))
      if (read._tag === "Left") {
        result.push({ step: step.id, experiment: name, architecture: folder, unreadable: unreadableReason(folder, read.left.message) })
        continue
      }
      const input = {
        architecture: read.right,
        adaptation: resolveAdaptation(experiment.components, experiment.base.family),
        train: experiment.train,
        resolution: resolutionOf(experiment.data),
        // Every process of every node takes its slice of the global batch.
        processes: trainProcesses(resources) * trainNodes(resources),
        sharding: resources.sharding
      }
      const memory = memoryPlan(input)
      const time = timePlan({
        ...input,
        gpu: resources.gpu,
        gpuPeakTflops: resources.gpuPeakTflops,
        utilisation: resources.utilisation,
        timeLimit: resources.time === undefined ? undefined : timeLimitSeconds(resources.time)
      })
      const warning = timeWarning(time, experiment.train.checkpointEvery)
      const gpuMemory = resources.gpuMemory === undefined ? undefined : memoryBytes(resources.gpuMemory)
      const fits = gpuMemory !== undefined && memory.total <= gpuMemory
      const short = gpuMemory !== undefined && !fits ? shortfall(input, memory) : undefined
      result.push({
        step: step.id,
        experiment: name,
        architecture: folder,
        plan: memory,
        ...(gpuMemory === undefined ? {} : { gpuMemory, fits }),
        ...(short === undefined ? {} : { largest: short.largest, advice: short.advice }),
        time,
        ...(warning === undefined ? {} : { timeWarning: warning })
      })
    }
    return result
  })

/** The refusal of every step that does not fit, naming its largest term and what to change. */
export const refuseUnfit = (memories: ReadonlyArray<StepMemory>): Effect.Effect<void, StepsDoNotFit> => {
  const problems = memories.flatMap((m) =>
    m.fits === false && m.plan !== undefined && m.largest !== undefined && m.gpuMemory !== undefined
      ? [
        `${m.step}: needs ${gib(m.plan.total)} of ${gib(m.gpuMemory)}; the largest term is the ${termName(m.largest)} (${gib(m.plan.terms[m.largest])}): ${
          (m.advice ?? []).join("; or ")
        }`
      ]
      : []
  )
  return problems.length === 0 ? Effect.void : Effect.fail(new StepsDoNotFit({ problems }))
}

/** Refuses, at plan time (validate, plan, run), every train step that exceeds its declared `resources.train.gpuMemory`. */
export const checkGpuMemory = (loaded: LoadedDeclaration, plan: Plan): Effect.Effect<void, StepsDoNotFit, ModelArchitecture> =>
  Effect.flatMap(planMemory(loaded, plan, true), refuseUnfit)

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`
const mib = (bytes: number) => (bytes >= 2 ** 30 ? gib(bytes) : `${(bytes / 2 ** 20).toFixed(1)} MiB`)
const count = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n.toLocaleString("en-US"))

const columns = (rows: ReadonlyArray<ReadonlyArray<string>>): Array<string> => {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ").trimEnd())
}

/** The text of one train step's plan: parameters per component, then the memory terms and the verdict. */
export const formatStepMemory = (m: StepMemory): string => {
  const head = `train step ${m.step} (${m.architecture})`
  if (m.plan === undefined) return `${head}\n  not estimated: ${m.unreadable ?? "no plan"}`
  const p = m.plan
  const parameters = columns([
    ["component", "treatment", "trainable", "(LoRA)", "frozen", "loaded"],
    ...p.components.map((
      c
    ) => [c.component, c.treatment, count(c.trainable), c.lora === 0 ? "" : count(c.lora), count(c.frozen), c.loaded ? "yes" : "no (cached)"])
  ])
  const checkpointing = p.gradientCheckpointing ? "with gradient checkpointing" : "without gradient checkpointing"
  const other = p.gradientCheckpointing ? "without" : "with"
  const terms = columns([
    ["weights", mib(p.terms.weights)],
    ["gradients", mib(p.terms.gradients)],
    ["optimizer states", mib(p.terms.optimizer)],
    ...(p.terms.ema === 0 ? [] : [["EMA copy", mib(p.terms.ema)]]),
    [`activations (${checkpointing})`, mib(p.terms.activations)],
    ...(p.shardedOver === 1 ? [] : [["gathered FSDP units", mib(p.terms.gathered)]]),
    ["total", mib(p.total)]
  ])
  const verdict = m.gpuMemory === undefined
    ? "no GPU memory declared (resources.train.gpuMemory): no verdict"
    : m.fits === true
    ? `fits ${gib(m.gpuMemory)} per GPU`
    : `does NOT fit ${gib(m.gpuMemory)} per GPU`
  return [
    head,
    ...parameters.map((l) => `  ${l}`),
    ...(p.shardedOver === 1 ? [] : [`  the UNet's weights, gradients and optimizer states sharded over ${p.shardedOver} processes (FSDP)`]),
    `  micro-batch ${p.microBatch} per device at ${p.latent.height}×${p.latent.width} latents, ${p.activationBytes} bytes per activation`,
    ...terms.map((l) => `  ${l}`),
    `  activations ${other} gradient checkpointing: ${mib(p.activationsOtherwise)}`,
    ...p.notCounted.map((n) => `  not counted: ${n}`),
    `  ${verdict}`,
    ...(m.time === undefined ? [] : formatTime(m.time, m.timeWarning))
  ].join("\n")
}

const flops = (n: number) => (n >= 1e15 ? `${(n / 1e15).toFixed(2)} PFLOP` : n >= 1e12 ? `${(n / 1e12).toFixed(2)} TFLOP` : `${(n / 1e9).toFixed(3)} GFLOP`)

/** The time plan's lines: FLOPs per model and sample, per step, and the estimated time when a peak is declared. */
const formatTime = (t: TimePlan, warning: string | undefined): Array<string> => [
  "  compute per training sample (forward FLOPs × passes):",
  ...columns(t.models.map((m) => [m.model, flops(m.forward), `× ${m.passes.toFixed(2)}`, flops(m.perSample)])).map((l) => `    ${l}`),
  `  per step: ${flops(t.stepFlops)} (${t.samplesPerStep} samples × ${flops(t.perSample)})`,
  t.peak === undefined || t.secondsPerStep === undefined
    ? "  no GPU declared (resources.train.gpu or gpuPeakTflops): no time estimate"
    : `  estimated ${duration(t.secondsPerStep)} a step, ${duration(t.trainSeconds!)} in all, on ${t.processes} × ${
      (t.peak.flopsPerSecond / 1e12).toFixed(1)
    } TFLOP/s (${t.peak.source}) at an assumed ${Math.round(t.utilisation * 100)} % utilisation (resources.train.utilisation)${
      t.timeLimit === undefined ? "" : `; time limit ${duration(t.timeLimit)}`
    }`,
  ...(warning === undefined ? [] : [`  warning: ${warning}`])
]
