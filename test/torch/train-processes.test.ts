import { NodeContext } from "@effect/platform-node"
import { Duration, Effect, Exit, Layer, Option, Schema } from "effect"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { WeightsLive } from "../../adapters/safetensors/weights-listing.ts"
import { ModelArchitectureLive } from "../../adapters/tfjs/model-architecture-live.ts"
import { EngineEnvironmentsLive } from "../../adapters/torch/python-environment.ts"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { engineLayer } from "../../adapters/tfjs/engine-live.ts"
import { resolveAdaptation } from "../../framework/declaration/adaptation.ts"
import { BaseModel } from "../../framework/declaration/base-model.ts"
import { decodeDeclaration } from "../../framework/declaration/decode.ts"
import type { StepResources } from "../../framework/declaration/resources.ts"
import { diffusers, lora, study } from "../../framework/index.ts"
import { compilePlan } from "../../framework/plan/compile.ts"
import { sharedStepConflicts } from "../../framework/plan/step-resources.ts"
import { enginePlan } from "../../framework/cli/engine-option.ts"
import { checkEngineSupport, EngineUnsupported } from "../../framework/plan/engine-support.ts"
import { plainProgress } from "../../framework/runner/progress.ts"
import type { StepHandlers } from "../../framework/runner/step-handler.ts"
import { StepImplementations } from "../../framework/runner/step-implementations.ts"
import type { StepTracking } from "../../framework/runner/tracking.ts"
import { Engine } from "../../framework/services/engine.ts"
import { localExecutor } from "../../framework/services/executor.ts"
import { validExperiment } from "../support/declarations.ts"
import { referencePython } from "../support/reference-python.ts"
import { repoRoot } from "../support/run-process.ts"
import { components, temporaryFolder, training } from "../training/training-run.ts"

/**
 * `resources.train.processes`, the process count of a train step: refused where it cannot be honoured
 * (the tfjs engine, other step kinds, a global batch that does not divide, LoRA dropout), not part of any
 * content key, and handed by the local runner to the train step. Cost: ≈ 15 s (two torch environment checks).
 */

const decode = (input: unknown) => Effect.runPromise(decodeDeclaration(input))
const services = Layer.mergeAll(EngineEnvironmentsLive, WeightsLive, ModelArchitectureLive, NodeContext.layer)

const problemsOf = async (declaration: unknown, engine: "tfjs" | "torch") => {
  const exit = await Effect.runPromiseExit(Effect.provide(checkEngineSupport(await decode(declaration), engine, (p) => p), services))
  if (Exit.isSuccess(exit)) return []
  const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  expect(error).toBeInstanceOf(EngineUnsupported)
  return (error as EngineUnsupported).problems
}

const withProcesses = (processes: number, batchSize: number, extra: Record<string, unknown> = {}) =>
  validExperiment({ train: { steps: 4, seed: 1, batchSize }, resources: { train: { processes } }, ...extra })

describe("resources.train.processes", () => {
  const previous = process.env.SARDINE_PYTHON
  beforeAll(() => {
    process.env.SARDINE_PYTHON = referencePython()
  })
  afterAll(() => {
    if (previous === undefined) delete process.env.SARDINE_PYTHON
    else process.env.SARDINE_PYTHON = previous
  })

  it("the tfjs engine refuses more than one process, naming the field and the engine; one is no refusal", async () => {
    expect(await problemsOf(withProcesses(2, 8), "tfjs")).toEqual([
      "resources.train.processes: the tfjs engine trains in one process (got 2); run it with --engine torch, or remove it"
    ])
    expect(await problemsOf(withProcesses(1, 8), "tfjs")).toEqual([])
    // gpus (a SLURM allocation) is no process count on tfjs.
    expect(await problemsOf(validExperiment({ resources: { train: { gpus: 2 } } }), "tfjs")).toEqual([])
  })

  it("the tfjs engine's trainer refuses more than one process when called without a plan", async () => {
    const demoBase = join(repoRoot, "experiments/demo/base")
    const exit = await Effect.runPromiseExit(Effect.provide(
      Effect.flatMap(Engine, (engine) =>
        engine.train({
          base: { base: Schema.decodeUnknownSync(BaseModel)(diffusers(demoBase, { family: "tiny" })), path: demoBase },
          adaptation: resolveAdaptation(components({ unet: { _tag: "full", lr: 1e-3 } }), "tiny"),
          train: training({ steps: 1, batchSize: 2 }),
          dataDir: join(repoRoot, "no-data"),
          workDir: join(repoRoot, "no-work"),
          processes: 2,
          progress: () => Effect.void,
          metrics: () => Effect.void,
          log: () => Effect.void
        })),
      engineLayer({ backend: "cpu" }).pipe(Layer.provide(ImageIOLive))
    ))
    expect(String(Exit.isFailure(exit) ? exit.cause : "")).toContain("resources.train.processes: the tfjs engine trains in one process (got 2)")
  }, 120_000)

  it("the torch engine refuses a global batch that does not divide (both numbers named) and LoRA dropout; takes the rest", async () => {
    expect(await problemsOf(withProcesses(3, 8), "torch")).toEqual([
      "train.batchSize: 8 is the global batch and does not divide among 3 processes (resources.train.processes); declare a multiple of 3"
    ])
    // One process per GPU when processes is not declared.
    expect(await problemsOf(validExperiment({ train: { steps: 4, seed: 1, batchSize: 3 }, resources: { default: { gpus: 2 } } }), "torch")).toEqual([
      "train.batchSize: 3 is the global batch and does not divide among 2 processes (resources.train.processes); declare a multiple of 2"
    ])
    const dropout = withProcesses(2, 8, { components: { unet: lora({ rank: 2, lr: 1e-3, dropout: 0.1 }) } })
    expect(await problemsOf(dropout, "torch")).toEqual([
      "components.unet.dropout: LoRA dropout (0.1) draws its masks per process, so 2 processes (resources.train.processes) would not train as one does; declare 0, or train on one process"
    ])
    expect(await problemsOf(withProcesses(2, 8), "torch")).toEqual([])
  }, 120_000)

  it("resources.train.sharding fsdp is refused where it cannot be honoured, each field named; a full UNet on 2 processes takes it", async () => {
    const sharded = (processes: number, extra: Record<string, unknown> = {}, train: Record<string, unknown> = {}) =>
      validExperiment({ train: { steps: 4, seed: 1, batchSize: 8, ...train }, resources: { train: { processes, sharding: "fsdp" } }, ...extra })
    expect(await problemsOf(sharded(2), "torch")).toEqual([])
    expect(await problemsOf(sharded(2), "tfjs")).toEqual([
      "resources.train.processes: the tfjs engine trains in one process (got 2); run it with --engine torch, or remove it",
      "resources.train.sharding: the tfjs engine does not shard (fsdp is the torch engine's); run it with --engine torch, or remove it"
    ])
    expect(await problemsOf(sharded(1), "torch")).toEqual([
      "resources.train.sharding: fsdp shards over several processes (got 1); declare resources.train.processes ≥ 2 (or gpus), or remove it"
    ])
    expect(await problemsOf(sharded(2, { components: { unet: lora({ rank: 2, lr: 1e-3 }) } }), "torch")).toEqual([
      "resources.train.sharding: fsdp shards the fully trained UNet, and components.unet is lora; remove it"
    ])
    expect(
      await problemsOf(
        sharded(2, {}, { ema: { decay: 0.999 }, optimizer: { _tag: "adamw8bit" }, validationPrompts: ["SAR"], validationLoss: { fraction: 0.25 } }),
        "torch"
      )
    ).toEqual([
      "train.ema: an EMA of a sharded UNet is not supported (resources.train.sharding: fsdp); remove one of them",
      "train.optimizer: adamw8bit with a sharded UNet (resources.train.sharding: fsdp) is not supported; declare adamw",
      "train.validationPrompts: validation sampling runs on rank 0 alone and cannot run a sharded UNet (resources.train.sharding: fsdp); remove one of them",
      "train.validationLoss: the held-out loss runs on rank 0 alone and cannot run a sharded UNet (resources.train.sharding: fsdp); remove one of them"
    ])
    expect(await problemsOf(sharded(2, {}, { precision: "fp16" }), "torch")).toEqual([
      "train.precision: fp16 loss scaling with a sharded UNet (resources.train.sharding: fsdp) is not supported; declare bf16"
    ])
    expect(await problemsOf(validExperiment({ resources: { generate: { sharding: "fsdp" } } }), "torch")).toEqual([
      "resources.generate.sharding: only train steps shard (a generate step runs one process); remove it"
    ])
  }, 120_000)

  it("only train steps take a process count, on either engine", async () => {
    const declaration = validExperiment({ resources: { generate: { processes: 2 } } })
    const refusal = "resources.generate.processes: only train steps run on several processes (a generate step runs one); remove it"
    expect(await problemsOf(declaration, "tfjs")).toEqual([refusal])
  })

  it("resources.train.nodes: refused on tfjs and on other step kinds; the batch divides among processes × nodes", async () => {
    expect(await problemsOf(validExperiment({ resources: { train: { nodes: 2 } } }), "tfjs")).toEqual([
      "resources.train.nodes: the tfjs engine trains in one process on one node (got 2); run it with --engine torch, or remove it"
    ])
    expect(await problemsOf(validExperiment({ resources: { generate: { nodes: 2 } } }), "torch")).toEqual([
      "resources.generate.nodes: only train steps run on several nodes (a generate step runs on one); remove it"
    ])
    expect(await problemsOf(withProcesses(2, 6, { resources: { train: { processes: 2, nodes: 2 } } }), "torch")).toEqual([
      "train.batchSize: 6 is the global batch and does not divide among 4 processes (resources.train.processes × resources.train.nodes); declare a multiple of 4"
    ])
    expect(await problemsOf(withProcesses(2, 8, { resources: { train: { processes: 2, nodes: 2 } } }), "torch")).toEqual([])
  })

  it("is part of no content key", async () => {
    const keys = async (declaration: unknown) => compilePlan(await decode(declaration), new Map(), "torch").steps.map((s) => s.key)
    expect(await keys(withProcesses(2, 8))).toEqual(await keys(withProcesses(1, 8)))
  })

  it("two experiments sharing one torch training but declaring different counts are refused, naming both; the same count, or tfjs, is no refusal", async () => {
    const sharing = (a: number | undefined, b: number, resources: Record<string, unknown> = {}) =>
      study({
        name: "s",
        ...resources,
        experiments: [
          validExperiment({ name: "one", ...(a === undefined ? {} : { resources: { train: { processes: a } } }), train: { steps: 4, seed: 1, batchSize: 4 } }),
          // Differs only in what it samples: the training is the same step.
          validExperiment({
            name: "other",
            resources: { train: { processes: b } },
            train: { steps: 4, seed: 1, batchSize: 4 },
            generate: { prompts: ["SAR image of a harbour"], seeds: [0], steps: 4 }
          })
        ]
      })
    const conflicts = async (declaration: unknown, engine: "tfjs" | "torch") => {
      const decoded = await decode(declaration)
      return sharedStepConflicts(decoded, compilePlan(decoded, new Map(), engine))
    }
    expect(await conflicts(sharing(2, 4), "torch")).toEqual([
      "one/train: one training shared by one and other, which declare different resources.train.processes (one 2, other 4); declare the same count for all of them"
    ])
    expect(await conflicts(sharing(2, 2), "torch")).toEqual([])
    // One GPU each by default: one process on a GPU against a declared one is the same count.
    expect(await conflicts(sharing(undefined, 1, { resources: { default: { gpus: 1 } } }), "torch")).toEqual([])
    expect(await conflicts(sharing(1, 4), "tfjs")).toEqual([])
    // What `sardine validate`, plan and run are refused with.
    const loaded = { file: "s.json", directory: repoRoot, declaration: await decode(sharing(2, 4)) }
    const exit = await Effect.runPromiseExit(Effect.provide(enginePlan(loaded, Option.some("torch"), { check: true, quiet: true }), services))
    expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error.message : "").toBe(
      "experiments that share a step ask to run it differently:\n  one/train: one training shared by one and other, which declare different resources.train.processes (one 2, other 4); declare the same count for all of them"
    )
  }, 120_000)

  it("the local runner hands each step the declaration's resources, the experiment's over the study's", async () => {
    const folder = await temporaryFolder("train-processes")
    try {
      const declaration = await decode(study({
        name: "s",
        resources: { default: { gpus: 1 }, train: { processes: 4 } },
        experiments: [
          validExperiment({ name: "two", resources: { train: { processes: 2 } } }),
          validExperiment({ name: "study-wide", train: { steps: 4, seed: 2 } })
        ]
      }))
      const plan = compilePlan(declaration, new Map(), "torch")
      const seen = new Map<string, StepResources>()
      const handlers = new Proxy({}, {
        get: (_, kind) => (context: { step: { id: string; kind: string }; resources: StepResources }) =>
          Effect.sync(() => void (kind === "train" && seen.set(context.step.id, context.resources)))
      }) as StepHandlers<never>
      const tracking: StepTracking = {
        metrics: () => Effect.void,
        metricsOf: () => Effect.void,
        image: () => Effect.void,
        artifact: () => Effect.void,
        datasetInput: () => Effect.void,
        target: "none",
        runIds: {}
      }
      const outcomes = await Effect.runPromise(
        localExecutor.execute({
          loaded: { file: join(folder.dir, "study.json"), directory: folder.dir, declaration },
          plan,
          cacheDir: join(folder.dir, "cache"),
          only: ["train"],
          concurrency: 1,
          trackingUri: "none",
          tracking: () => tracking,
          force: new Set(),
          lockLease: Duration.minutes(1)
        }).pipe(
          Effect.provide(Layer.mergeAll(
            Layer.succeed(StepImplementations, { handlers, backend: () => Effect.succeed(undefined) }),
            plainProgress(() => undefined),
            NodeContext.layer
          ))
        )
      )
      expect(outcomes.filter((o) => o.step.kind === "train").map((o) => o.status)).toEqual(["ran", "ran"])
      expect(Object.fromEntries(seen)).toEqual({
        "two/train": { cpus: 1, gpus: 1, processes: 2 },
        "study-wide/train": { cpus: 1, gpus: 1, processes: 4 }
      })
    } finally {
      await folder.remove()
    }
  })
})
