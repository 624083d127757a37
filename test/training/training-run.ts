import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { openSafetensors } from "../../adapters/safetensors/safetensors-reader.ts"
import { disposePipeline, loadPipeline, type StableDiffusionPipeline } from "../../adapters/tfjs/pipeline-loader.ts"
import { MODEL_WEIGHTS, readModelManifest, type ModelManifest } from "../../adapters/tfjs/training/trained-model-files.ts"
import { trainPipeline, type TrainRun } from "../../adapters/tfjs/training/trainer.ts"
import type { StepRecord } from "../../adapters/tfjs/training/training-checkpoint.ts"
import { resolveAdaptation } from "../../framework/declaration/adaptation.ts"
import type { ModelFamily } from "../../framework/declaration/base-model.ts"
import { Components, type ComponentsInput } from "../../framework/declaration/components.ts"
import { Training, type TrainingInput } from "../../framework/declaration/training.ts"
import { prepareSyntheticData } from "./prepared-data.ts"

export const FIXTURES = "test/fixtures/pipelines"

export const components = (input: ComponentsInput) => Schema.decodeUnknownSync(Components)(input)
/** The resolved adaptation of declared components (an SDXL base unless said otherwise), as the plan gives it to the engine. */
export const adaptation = (input: ComponentsInput, family: ModelFamily = "sdxl") => resolveAdaptation(components(input), family)
export const training = (input: TrainingInput) => Schema.decodeUnknownSync(Training)(input)

/** Every tensor of every component, by `<component>/<name>`, as values (a snapshot to compare bit for bit). */
export const snapshot = (pipeline: StableDiffusionPipeline): Map<string, Float32Array> => {
  const out = new Map<string, Float32Array>()
  for (const model of [{ name: "unet", ...pipeline.unet }, { name: "vae", ...pipeline.vae }, ...pipeline.textEncoders]) {
    for (const [name, tensor] of model.parameters) out.set(`${model.name}/${name}`, tensor.dataSync() as Float32Array)
  }
  return out
}

export const sameBits = (a: Float32Array, b: Float32Array): boolean =>
  a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0

/** A temporary folder removed by the returned cleanup. */
export const temporaryFolder = async (prefix: string) => {
  const dir = await mkdtemp(join(tmpdir(), `sardine-${prefix}-`))
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) }
}

export interface TrainingOutcome {
  readonly before: Map<string, Float32Array>
  readonly after: Map<string, Float32Array>
  readonly manifest: ModelManifest
  /** model.safetensors as written, by name. */
  readonly weights: Map<string, { readonly shape: ReadonlyArray<number>; readonly data: Float32Array }>
  readonly history: ReadonlyArray<StepRecord>
  readonly tensorsPerStep: ReadonlyArray<number>
}

export const readWeights = (file: string) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const reader = yield* openSafetensors(file)
    const out = new Map<string, { readonly shape: ReadonlyArray<number>; readonly data: Float32Array }>()
    for (const t of reader.header.tensors) out.set(t.name, { shape: t.shape, data: yield* reader.readFloat32(t.name) })
    return out
  })))

/**
 * Trains `pipelineName` (a fixture) as declared on a prepared synthetic set in `dir`, with the real
 * trainer, and returns every parameter before and after, the written model and the metrics.
 */
export const trainFixture = async (options: {
  readonly dir: string
  readonly pipeline?: string
  readonly components: ComponentsInput
  /** The declared family of the fixture (sdxl-tiny: "sdxl"). */
  readonly family?: ModelFamily
  readonly train: TrainingInput
  readonly data?: { readonly n: number; readonly size: number; readonly seed: number }
  readonly run?: Partial<TrainRun>
}): Promise<TrainingOutcome> => {
  const dataDir = join(options.dir, "data")
  await Effect.runPromise(prepareSyntheticData(dataDir, options.data ?? { n: 3, size: 32, seed: 1 }))
  const pipeline = await Effect.runPromise(loadPipeline(join(FIXTURES, options.pipeline ?? "sdxl-tiny")))
  try {
    const before = snapshot(pipeline)
    const tensorsPerStep: Array<number> = []
    const workDir = join(options.dir, "work")
    await Effect.runPromise(trainPipeline(pipeline, {
      base: pipeline.folder,
      adaptation: adaptation(options.components, options.family),
      train: training(options.train),
      dataDir,
      workDir,
      progress: () => Effect.void,
      metrics: () => Effect.sync(() => void tensorsPerStep.push(tf.memory().numTensors)),
      log: () => Effect.void,
      ...options.run
    }))
    const manifest = await Effect.runPromise(readModelManifest(workDir))
    const weights = await readWeights(join(workDir, MODEL_WEIGHTS))
    const history = (JSON.parse(await readFile(join(workDir, "training.json"), "utf8")) as { steps: Array<StepRecord> }).steps
    return { before, after: snapshot(pipeline), manifest, weights, history, tensorsPerStep }
  } finally {
    disposePipeline(pipeline)
  }
}
