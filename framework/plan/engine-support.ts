import type { FileSystem } from "@effect/platform"
import { Effect, Option, Schema } from "effect"
import { join } from "node:path"
import { statIfPresent } from "../files/if-present.ts"
import { type Declaration, type EngineChoice, type Experiment, experimentsOf } from "../declaration/experiment.ts"
import { resourcesFor, type Resources, trainNodes, trainProcesses } from "../declaration/resources.ts"
import type { Training } from "../declaration/training.ts"
import type { Treatment } from "../declaration/treatment.ts"
import { type EngineError, type EngineName, EngineEnvironments, type TorchEnvironment } from "../services/engine.ts"
import { ModelArchitecture } from "../services/model-architecture.ts"
import { Weights } from "../services/weights.ts"

/**
 * Which engine a declaration runs on, and whether that engine can do everything it declares: a field an
 * engine cannot honour is refused before anything runs, naming the field and the engine, never accepted
 * and ignored. The torch engine does everything the tfjs engine does (the CLIP trainer aside: train-clip
 * steps run on tfjs whatever the choice, and the plan says so) and more.
 */

export class EngineUnsupported extends Schema.TaggedError<EngineUnsupported>()("EngineUnsupported", {
  engine: Schema.String,
  problems: Schema.Array(Schema.String)
}) {
  override get message() {
    return `the ${this.engine} engine cannot run this declaration:\n  ${this.problems.join("\n  ")}`
  }
}

/** A UNet this large is SDXL's size (2.57 G parameters); the tfjs engine cannot hold it (DESIGN §4b). */
export const TFJS_UNET_LIMIT = 2e9

/** The engine named by `--engine` (when given), else the declaration's, else tfjs; `auto` resolved here. */
export const chosenEngine = (declaration: Declaration, option: EngineChoice | undefined): Effect.Effect<EngineName, never, EngineEnvironments> =>
  Effect.gen(function*() {
    const declared = declaration.kind === "clip" ? undefined : declaration.engine
    const choice = option ?? declared ?? "tfjs"
    if (choice !== "auto") return choice
    return (yield* (yield* EngineEnvironments).torchConfigured) ? "torch" : "tfjs"
  })

/**
 * What the tfjs engine cannot do of a training, field by field (the base's size is checked on its files, below);
 * its trainer refuses the same, for a caller that did not plan.
 */
export const tfjsTrainingProblems = (train: Training): Array<string> => {
  const torch = "run it with --engine torch"
  return [
    ...(train.gradientCheckpointing
      ? [`train.gradientCheckpointing: the tfjs engine has no gradient checkpointing (it keeps every activation); ${torch}, or remove it`]
      : []),
    ...(train.validationPrompts.length > 0
      ? [`train.validationPrompts: the tfjs engine does not sample during training (the generate step samples the declared prompts); ${torch}, or remove them`]
      : []),
    ...(train.precision !== "fp32" ? [`train.precision: the tfjs engine computes in fp32 only (got "${train.precision}"); ${torch}, or declare "fp32"`] : []),
    ...(train.optimizer._tag === "adamw8bit" ? [`train.optimizer: 8-bit AdamW (bitsandbytes) needs the torch engine; ${torch}, or declare adamw`] : [])
  ]
}

const torchProblems = (train: Training, env: TorchEnvironment): Array<string> => {
  return [
    ...(train.optimizer._tag === "adamw8bit" && env.bitsandbytes === null
      ? [`train.optimizer: adamw8bit needs bitsandbytes, which the torch engine's Python (${env.python}) cannot import; install it there, or declare adamw`]
      : []),
    ...(train.precision === "fp16" && !env.device.startsWith("cuda")
      ? [`train.precision: fp16 mixed precision needs a CUDA device; the torch engine computes on ${env.device} here: declare "bf16" or "fp32"`]
      : [])
  ]
}

/** The UNet parameter count of a diffusers base folder that exists (undefined otherwise: preflight reports it). */
const unetParameters = (folder: string) =>
  Effect.gen(function*() {
    const found = yield* statIfPresent(join(folder, "unet"))
    if (Option.isNone(found) || found.value.type !== "Directory") return undefined
    const listing = yield* (yield* Weights).list(join(folder, "unet")).pipe(Effect.option)
    return listing._tag === "Some" ? listing.value.parameters : undefined
  })

/** The folder of configs a base is built from, for bases the plan reads (a trained base was checked as its source experiment). */
const baseConfigFolder = (base: Experiment["base"], resolvePath: (path: string) => string): string | undefined =>
  base._tag === "diffusers" ? resolvePath(base.path) : base._tag === "scratch" ? resolvePath(base.architecture) : undefined

/**
 * Every field of `declaration` that `engine` cannot honour, by experiment: for torch, after checking its
 * environment (one worker start); for tfjs, with the base folders' sizes; for both, every config value of
 * the base (and a ControlNet folder) the engine would not honour (ModelArchitecture.configRefusals).
 */
export const checkEngineSupport = (
  declaration: Declaration,
  engine: EngineName,
  resolvePath: (path: string) => string
): Effect.Effect<void, EngineUnsupported | EngineError, EngineEnvironments | Weights | ModelArchitecture | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    // One line per problem, naming every experiment that has it (a study's strategies share most fields).
    const problems = new Map<string, Array<string>>()
    const refuse = (found: ReadonlyMap<string, ReadonlyArray<string>>) => {
      const named = [...found].map(([problem, names]) => (declaration.kind === "study" ? `${names.join(", ")}: ${problem}` : problem))
      return new EngineUnsupported({ engine, problems: named })
    }
    // Refused before the torch engine's environment is asked for: no Python makes it able to.
    for (const experiment of experimentsOf(declaration)) {
      const own = [...conditioningProblems(experiment, engine), ...processProblems(declaration, experiment, engine)]
      for (const problem of own) problems.set(problem, [...(problems.get(problem) ?? []), experiment.name])
    }
    if (problems.size > 0) return yield* refuse(problems)
    // The torch engine's Python must be there and of the tested versions before anything runs.
    const torch = engine === "torch" ? yield* (yield* EngineEnvironments).torch : undefined
    for (const experiment of experimentsOf(declaration)) {
      const trained = experiment.train !== undefined && !experiment.baseline ? experiment.train : undefined
      const own = trained === undefined ? [] : torch === undefined ? tfjsTrainingProblems(trained) : torchProblems(trained, torch)
      if (engine === "tfjs" && experiment.base._tag === "diffusers") {
        const { path } = experiment.base
        const count = yield* unetParameters(resolvePath(path)).pipe(
          Effect.catchAll((e) => Effect.sync(() => own.push(`base: ${path} cannot be inspected: ${e.message}`)).pipe(Effect.as(undefined)))
        )
        if (count !== undefined && count >= TFJS_UNET_LIMIT) {
          own.push(
            `base: the UNet of ${experiment.base.path} has ${(count / 1e9).toFixed(2)} G parameters (SDXL size); the tfjs engine holds every ` +
              `tensor in float32 (≈ ${Math.round((count * 4) / 1e9)} GB to load, ≈ ${Math.round((count * 16) / 1e9)} GB to train fully) with no mixed ` +
              `precision or gradient checkpointing: run it with --engine torch`
          )
        }
      }
      const base = baseConfigFolder(experiment.base, resolvePath)
      const init = experiment.conditioning?.init
      if (base !== undefined) {
        const folders = { base, ...(init === undefined ? {} : init === "unet" ? { controlNetFromUnet: true } : { controlNet: resolvePath(init) }) }
        for (const { field, reason } of yield* (yield* ModelArchitecture).configRefusals(engine, folders, experiment.generate)) {
          own.push(`${field}: ${reason}`)
        }
      }
      for (const problem of own) problems.set(problem, [...(problems.get(problem) ?? []), experiment.name])
    }
    if (problems.size > 0) return yield* refuse(problems)
  })

/**
 * What an engine cannot do of an experiment's conditioning: both engines sample with the ControlNet the
 * train step made, so a conditioned baseline (nothing trained) has none to sample with; the torch engine's
 * validation images during training are sampled without the ControlNet (they would not show it).
 */
const conditioningProblems = (experiment: Experiment, engine: EngineName): ReadonlyArray<string> => {
  if (experiment.conditioning === undefined) return []
  if (experiment.baseline || experiment.train === undefined) {
    return [
      `conditioning: the ${engine} engine samples a conditioned experiment with the ControlNet its training made, and a baseline trains none; train the experiment (baseline: false, with train), or remove conditioning`
    ]
  }
  return engine === "torch" && (experiment.train.validationPrompts.length > 0)
    ? [
      "train.validationPrompts: the torch engine samples validation images without the experiment's ControlNet (no conditioning image goes with a prompt); remove them (the generate step samples the conditioned scenes)"
    ]
    : []
}

/** What the tfjs engine cannot do of a train step's process count and sharding; its trainer refuses the same, for a caller that did not plan. */
export const tfjsProcessesProblems = (processes: number | undefined, sharding?: "none" | "fsdp"): Array<string> => [
  ...(processes !== undefined && processes > 1
    ? [`resources.train.processes: the tfjs engine trains in one process (got ${processes}); run it with --engine torch, or remove it`]
    : []),
  ...(sharding === "fsdp"
    ? [`resources.train.sharding: the tfjs engine does not shard (fsdp is the torch engine's); run it with --engine torch, or remove it`]
    : [])
]

/**
 * What the torch engine cannot do of `resources.train.sharding: "fsdp"` (its worker's sharding.py refuses the
 * same): it shards the fully trained UNet over two or more processes; what would need the whole UNet in one
 * process (an EMA copy, rank 0's validation) or sharded states it does not handle (8-bit AdamW, fp16 scaling) is refused.
 */
const shardingProblems = (experiment: Experiment, train: Training, processes: number): Array<string> => {
  const unet = experiment.components.unet
  return [
    ...(processes < 2
      ? [`resources.train.sharding: fsdp shards over several processes (got ${processes}); declare resources.train.processes ≥ 2 (or gpus), or remove it`]
      : []),
    ...(unet?._tag === "full"
      ? []
      : [`resources.train.sharding: fsdp shards the fully trained UNet, and components.unet is ${unet?._tag ?? "frozen"}; remove it`]),
    ...(train.ema === undefined ? [] : ["train.ema: an EMA of a sharded UNet is not supported (resources.train.sharding: fsdp); remove one of them"]),
    ...(train.optimizer._tag === "adamw"
      ? []
      : ["train.optimizer: adamw8bit with a sharded UNet (resources.train.sharding: fsdp) is not supported; declare adamw"]),
    ...(train.precision === "fp16"
      ? ["train.precision: fp16 loss scaling with a sharded UNet (resources.train.sharding: fsdp) is not supported; declare bf16"]
      : []),
    ...(train.validationPrompts.length > 0
      ? ["train.validationPrompts: validation sampling runs on rank 0 alone and cannot run a sharded UNet (resources.train.sharding: fsdp); remove one of them"]
      : []),
    ...(train.validationLoss === undefined
      ? []
      : ["train.validationLoss: the held-out loss runs on rank 0 alone and cannot run a sharded UNet (resources.train.sharding: fsdp); remove one of them"])
  ]
}

const tfjsNodesProblems = (nodes: number | undefined): Array<string> =>
  nodes !== undefined && nodes > 1
    ? [`resources.train.nodes: the tfjs engine trains in one process on one node (got ${nodes}); run it with --engine torch, or remove it`]
    : []

/** The LoRA treatments of an experiment's components, by field path. */
const loraDropouts = (experiment: Experiment): ReadonlyArray<readonly [string, number]> => {
  const { textEncoders } = experiment.components
  const encoders: ReadonlyArray<readonly [string, Treatment | undefined]> = "_tag" in textEncoders
    ? [["textEncoders", textEncoders]]
    : [["textEncoders.textEncoder", textEncoders.textEncoder], ["textEncoders.textEncoder2", textEncoders.textEncoder2]]
  const all: ReadonlyArray<readonly [string, Treatment | undefined]> = [["unet", experiment.components.unet], ["vae", experiment.components.vae], ...encoders]
  return all.flatMap(([field, t]) => (t?._tag === "lora" && t.dropout > 0 ? [[`components.${field}.dropout`, t.dropout] as const] : []))
}

/**
 * What an engine cannot do of an experiment's process count (`resources.<kind>.processes`): only train
 * steps run on several processes, only on the torch engine, with a global batch that divides among them and
 * without LoRA dropout (its masks are drawn per process, so the run would not be the one-process run).
 */
const processProblems = (declaration: Declaration, experiment: Experiment, engine: EngineName): ReadonlyArray<string> => {
  const layers: ReadonlyArray<Resources | undefined> = [declaration.kind === "study" ? declaration.resources : undefined, experiment.resources]
  const elsewhere = layers.flatMap((layer) =>
    Object.entries(layer ?? {}).flatMap(([kind, resources]) =>
      kind !== "train" && kind !== "default"
        ? [
          ...(["processes", "nodes"] as const).flatMap((field) =>
            resources?.[field] !== undefined
              ? [
                `resources.${kind}.${field}: only train steps run on several ${field} (a ${kind} step runs ${field === "nodes" ? "on one" : "one"}); remove it`
              ]
              : []
          ),
          ...(resources?.sharding !== undefined ? [`resources.${kind}.sharding: only train steps shard (a ${kind} step runs one process); remove it`] : [])
        ]
        : []
    )
  )
  const train = experiment.train !== undefined && !experiment.baseline ? experiment.train : undefined
  if (train === undefined) return elsewhere
  const resources = resourcesFor(layers, "train")
  if (engine === "tfjs") return [...elsewhere, ...tfjsProcessesProblems(resources.processes, resources.sharding), ...tfjsNodesProblems(resources.nodes)]
  const processes = trainProcesses(resources) * trainNodes(resources)
  const sharding = resources.sharding === "fsdp" ? shardingProblems(experiment, train, processes) : []
  if (processes === 1) return [...elsewhere, ...sharding]
  const declared = resources.nodes === undefined ? "resources.train.processes" : "resources.train.processes × resources.train.nodes"
  return [
    ...elsewhere,
    ...sharding,
    ...(train.batchSize % processes !== 0
      ? [
        `train.batchSize: ${train.batchSize} is the global batch and does not divide among ${processes} processes (${declared}); declare a multiple of ${processes}`
      ]
      : []),
    ...loraDropouts(experiment).map(([field, dropout]) =>
      `${field}: LoRA dropout (${dropout}) draws its masks per process, so ${processes} processes (${declared}) would not train as one does; declare 0, or train on one process`
    )
  ]
}

/** What a plan should say about its engines beyond the steps' keys. */
export const engineNotes = (declaration: Declaration, engine: EngineName): ReadonlyArray<string> =>
  engine === "torch" && declaration.kind === "clip"
    ? ["train-clip runs on the tfjs engine: the torch engine has no CLIP trainer"]
    : []
