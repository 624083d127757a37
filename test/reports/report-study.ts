/**
 * A small real study for the report: declared like a user would (framework builders), compiled by
 * the real plan compiler, run by the real runner with the production prepare-data / evaluate /
 * report steps and the engine stand-ins of stand-in-steps.ts, tracked into a local MLflow folder by
 * the real file-store tracker. The bench uses the same code with more strategies and images.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Exit, FiberId, Option } from "effect"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { trackerFactoryLayer } from "../../adapters/mlflow/tracker-factory.ts"
import { canonicalJsonPretty } from "../../framework/declaration/canonical-json.ts"
import { decodeDeclaration, encodeDeclaration } from "../../framework/declaration/decode.ts"
import type { Dataset } from "../../framework/declaration/dataset.ts"
import type { Declaration } from "../../framework/declaration/experiment.ts"
import { replicatesOfExperiment } from "../../framework/declaration/replicates.ts"
import { diffusers, experiment, frozen, full, learnedToken, lora, study, synthetic, type ExperimentInput } from "../../framework/index.ts"
import { planWithFingerprints } from "../../framework/plan/input-fingerprints.ts"
import { enginesOf, type Plan } from "../../framework/plan/step.ts"
import { plainProgress } from "../../framework/runner/progress.ts"
import { runPlan, type StepOutcome } from "../../framework/runner/runner.ts"
import { StepImplementations } from "../../framework/runner/step-implementations.ts"
import { openTracking } from "../../framework/runner/tracking.ts"
import type { ExperimentDirs } from "../../framework/steps/reported-study.ts"
import { repoRoot } from "../support/run-process.ts"
import { standInStudySteps } from "./stand-in-steps.ts"

export interface ReportStudyOptions {
  readonly name: string
  /** How many strategies: the first four are baseline, full UNet, LoRA UNet, hybrid; more add LoRA ranks and text-encoder variants. */
  readonly strategies: number
  readonly seenPrompts: number
  readonly unseenPrompts: number
  readonly seeds: number
  readonly trainSteps: number
  readonly size: number
  readonly referenceImages: number
  /** Training replicates of named strategies (the others train once). */
  readonly replicates?: Readonly<Record<string, number>>
  /** Declared comparisons besides those with the baseline. */
  readonly compare?: ReadonlyArray<readonly [string, string]>
  /** Bootstrap resamples and most permutations per test (the declaration's default is 2000). */
  readonly resamples?: number
  /** The real images evaluations compare with (default: `referenceImages` synthetic scenes). */
  readonly reference?: Dataset
}

/** The first two name scenes of the synthetic reference (harbour, farmland); the unseen ones name none. */
const concepts = [
  "a harbour with ships near a bridge",
  "farmland with crop fields crossed by a road",
  "a dense urban area",
  "a forest with a river",
  "a lake surrounded by fields",
  "a coastline with a town",
  "farmland with scattered houses",
  "a river delta"
]
const unseenConcepts = ["an airport with parked aircraft", "a wind farm at sea", "an oil platform", "a container terminal"]

/** Strategies in the seed study's order, then variations, as many as asked. */
const strategies = (shared: Omit<ExperimentInput, "name" | "components">, count: number): ReadonlyArray<ExperimentInput> => {
  const tokenised = {
    data: { ...shared.data, captionTemplate: "{token} image of {caption}" },
    generate: {
      ...shared.generate,
      prompts: (shared.generate.prompts as ReadonlyArray<{ text: string; split: "seen" | "unseen" }>).map((p) => ({
        ...p,
        text: p.text.replace(/^SAR image/, "{token} image")
      }))
    }
  }
  const { train: _train, ...untrained } = shared
  const all: Array<ExperimentInput> = [
    { ...untrained, name: "baseline", baseline: true, components: { unet: frozen() }, description: "The base model as it is." },
    {
      ...shared,
      name: "full-unet",
      components: { unet: full({ lr: 1e-4 }) },
      // The held-out validation loss, drawn dashed in the training loss's chart.
      ...(shared.train === undefined
        ? {}
        : { train: { ...shared.train, validationLoss: { fraction: 0.2, every: Math.max(1, Math.floor(shared.train.steps / 4)) } } })
    },
    { ...shared, name: "lora-unet", components: { unet: lora({ rank: 4, lr: 1e-3 }) } },
    {
      ...shared,
      ...tokenised,
      name: "hybrid",
      description: "Full UNet + LoRA text encoder + a learned <SAR> token.",
      components: { unet: full({ lr: 1e-4 }), textEncoders: lora({ rank: 4, lr: 5e-4 }), token: learnedToken({ token: "<SAR>", init: "radar", lr: 5e-3 }) }
    },
    { ...shared, name: "text-encoder-full", components: { unet: frozen(), textEncoders: full({ lr: 1e-5 }) } },
    { ...shared, name: "text-encoder-lora", components: { unet: frozen(), textEncoders: lora({ rank: 8, lr: 1e-4 }) } },
    { ...shared, name: "vae-full", components: { unet: frozen(), vae: full({ lr: 1e-5 }) } },
    { ...shared, name: "vae-lora", components: { unet: frozen(), vae: lora({ rank: 4, lr: 1e-4 }) } }
  ]
  for (let rank = 1; all.length < count; rank *= 2) {
    all.push({ ...shared, name: `lora-unet-r${rank}-with-a-long-descriptive-name`, components: { unet: lora({ rank, lr: 1e-3 }) } })
  }
  return all.slice(0, count)
}

export const reportStudy = (options: ReportStudyOptions) => {
  const prompts = [
    ...concepts.slice(0, options.seenPrompts).map((c) => ({ text: `SAR image of ${c}`, split: "seen" as const })),
    ...unseenConcepts.slice(0, options.unseenPrompts).map((c) => ({ text: `SAR image of ${c}`, split: "unseen" as const }))
  ]
  const shared = {
    base: diffusers(`${repoRoot}/test/fixtures/pipelines/sd1-tiny`, { family: "sd15" }),
    data: synthetic({ n: 6, size: options.size, seed: 1, looks: 4 }),
    train: {
      steps: options.trainSteps,
      seed: 3,
      checkpointEvery: options.trainSteps,
      lrSchedule: { warmupSteps: Math.ceil(options.trainSteps / 10), decay: "cosine" }
    },
    generate: { prompts, seeds: Array.from({ length: options.seeds }, (_, i) => i), steps: 4 },
    evaluate: {
      reference: options.reference ?? synthetic({ n: options.referenceImages, size: options.size, seed: 99, looks: 4 }),
      amplitude: { domain: "amplitude", bins: 64 },
      texture: { levels: 16, distances: [1], angles: [0, 90] },
      alignment: { clip: `${repoRoot}/test/fixtures/clip` },
      ...(options.resamples === undefined ? {} : { uncertainty: { resamples: options.resamples } })
    }
  } satisfies Omit<ExperimentInput, "name" | "components">
  return study({
    name: options.name,
    experiments: strategies(shared, options.strategies).map((e) =>
      experiment({ ...e, ...(options.replicates?.[e.name] === undefined ? {} : { replicates: options.replicates[e.name] }) })
    ),
    ...(options.compare === undefined ? {} : { compare: options.compare.map(([a, b]) => [a, b] as [string, string]) })
  })
}

export interface RanStudy {
  readonly file: string
  readonly cacheDir: string
  readonly trackingDir: string
  readonly plan: Plan
  readonly declaration: Declaration
  readonly outcomes: ReadonlyArray<StepOutcome>
  /** The MLflow experiment and runs the study logged to. */
  readonly runs: {
    readonly experimentId: string
    readonly top: { readonly runId: string }
    readonly experiments: ReadonlyMap<string, { readonly runId: string }>
  }
}

/** The finished steps of each replicate of the study's experiments, as the report takes them. */
export const experimentDirsOf = (ran: RanStudy): ReadonlyArray<ExperimentDirs> => {
  const declared = ran.declaration.kind === "study" ? ran.declaration.experiments : []
  const dir = (kind: string, name: string) => {
    const step = ran.plan.steps.find((s) => s.kind === kind && s.experiments.includes(name))
    return step === undefined ? undefined : join(ran.cacheDir, "steps", step.key)
  }
  return declared.map((experiment) => ({
    experiment,
    replicates: replicatesOfExperiment(experiment, ran.declaration).map(({ name, replicate }) => {
      const training = dir("train", name)
      return { name, replicate, evaluation: dir("evaluate", name)!, samples: dir("generate", name)!, ...(training === undefined ? {} : { training }) }
    })
  }))
}

/** Runs the study in `dir` (study.json, cache/, mlruns/) as `sardine run` would, without the CLI. */
export const runReportStudy = (dir: string, options: ReportStudyOptions): Promise<RanStudy> =>
  Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const declaration = yield* decodeDeclaration(reportStudy(options))
      const file = join(dir, "study.json")
      yield* Effect.promise(() => writeFile(file, canonicalJsonPretty(encodeDeclaration(declaration))))
      const cacheDir = join(dir, "cache")
      const { plan } = yield* planWithFingerprints({ file, directory: dir, declaration }, { cacheDir })
      const trackingDir = join(dir, "mlruns")
      const implementations = yield* StepImplementations
      let outcome: Exit.Exit<ReadonlyArray<StepOutcome>, unknown> = Exit.interrupt(FiberId.none)
      const tracking = yield* openTracking({
        loaded: { file, directory: dir, declaration },
        plan,
        cacheDir,
        uri: trackingDir,
        backend: yield* implementations.backend(enginesOf(plan)),
        outcome: () => outcome,
        optional: false
      })
      const outcomes = yield* runPlan(plan, implementations.handlers, {
        cacheDir,
        declarationDir: dir,
        concurrency: 1,
        tracking: tracking.forStep
      }).pipe(Effect.onExit((exit) => Effect.sync(() => (outcome = exit))))
      // Opened before the first step (optional: false), so every run has its id.
      const opened = (ref: string) => Option.getOrThrow(tracking.queue.runOf(ref))
      const runs = {
        experimentId: opened(tracking.runs.top).experimentId,
        top: opened(tracking.runs.top),
        experiments: new Map([...tracking.runs.experiments].map(([name, ref]) => [name, opened(ref)]))
      }
      return { file, cacheDir, trackingDir, plan, declaration, outcomes, runs }
    })).pipe(
      Effect.provide(standInStudySteps),
      Effect.provide(trackerFactoryLayer()),
      Effect.provide(plainProgress(() => {})),
      Effect.provide(NodeContext.layer)
    )
  )
