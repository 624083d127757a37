import { Effect } from "effect"
import { mkdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import sharp from "sharp"
import { type DatasetInput, type RunEndStatus, Tracker } from "../../framework/services/tracker.ts"
import { flattenParams, type Json } from "../../framework/tracking/flatten-params.ts"
import { systemTags } from "../../framework/tracking/system-tags.ts"

/*
 * A small study logged the way the runner will log one: a parent run for the study, a child run per
 * experiment, params from the flattened declaration, per-step metrics (with NaN and ±Infinity), dataset
 * inputs, artifacts (a file and a folder) and sample images. Returns exactly what it logged.
 */

export interface LoggedRun {
  readonly runId: string
  readonly name: string
  readonly parentRunId?: string
  readonly status: RunEndStatus
  readonly params: Record<string, string>
  readonly tags: Record<string, string>
  readonly metrics: Record<string, ReadonlyArray<{ step: number; value: number; timestamp: number }>>
  readonly datasets: ReadonlyArray<DatasetInput>
  /** Artifact path → bytes. */
  readonly artifacts: Record<string, Buffer>
  readonly imageSteps: ReadonlyArray<number>
}

export interface LoggedStudy {
  readonly experimentId: string
  readonly parent: LoggedRun
  readonly children: ReadonlyArray<LoggedRun>
}

const declaration = (name: string, rank: number, lr: number): Json => ({
  kind: "experiment",
  name,
  components: [
    { name: "unet", treatment: "lora", rank, alpha: rank * 2, learningRate: lr },
    { name: "vae", treatment: "frozen" },
    { name: "text_encoder", treatment: "full", learningRate: lr / 10 }
  ],
  train: { steps: 300, batchSize: 2, seed: 1234, resolution: [64, 64] },
  token: "<SAR>",
  notes: null
})

/** Files the scenario logs as artifacts; written under `dir`. */
export const writeScenarioFiles = async (dir: string) => {
  await mkdir(join(dir, "checkpoint", "unet"), { recursive: true })
  const files = {
    declaration: Buffer.from(JSON.stringify(declaration("exp-a", 4, 1e-4), null, 2)),
    weights: Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 37) % 256)),
    config: Buffer.from("{\"rank\": 4}\n")
  }
  await writeFile(join(dir, "declaration.json"), files.declaration)
  await writeFile(join(dir, "checkpoint", "unet", "lora.safetensors"), files.weights)
  await writeFile(join(dir, "checkpoint", "config.json"), files.config)
  const image = await sharp(
    Buffer.from(Array.from({ length: 96 * 64 * 3 }, (_, i) => (i * 7) % 251)),
    { raw: { width: 96, height: 64, channels: 3 } }
  ).png().toBuffer()
  await writeFile(join(dir, "sample.png"), image)
  return { files, image, imageFile: join(dir, "sample.png") }
}

const BASE_TIME = 1_790_000_000_000

export const logStudy = (
  experimentName: string,
  filesDir: string,
  studyKey: string
): Effect.Effect<LoggedStudy, unknown, Tracker> =>
  Effect.gen(function*() {
    const tracker = yield* Tracker
    const { files } = yield* Effect.promise(() => writeScenarioFiles(filesDir))
    const experimentId = yield* tracker.getOrCreateExperiment(experimentName)
    const base = {
      sardineVersion: "0.1.0",
      user: "tester",
      host: "ci-host",
      sourceName: "experiments/demo.ts",
      gitCommit: "0123456789abcdef0123456789abcdef01234567"
    }

    const parentTags = systemTags({ ...base, runName: "study-demo" })
    const parent = yield* tracker.startRun({ experimentId, name: "study-demo", tags: parentTags, reuseKey: studyKey, startTime: BASE_TIME })
    const parentParams = { "study.name": "demo", "study.experiments": "[\"exp-a\",\"exp-b\"]" }
    yield* tracker.logParams(parent.runId, parentParams)

    const children: Array<LoggedRun> = []
    for (const [index, name] of ["exp-a", "exp-b"].entries()) {
      const tags = systemTags({ ...base, runName: name, backend: "wasm", parentRunId: parent.runId })
      const run = yield* tracker.startRun({
        experimentId,
        name,
        tags,
        parentRunId: parent.runId,
        reuseKey: `${studyKey}-${name}`,
        startTime: BASE_TIME + 1000 * (index + 1)
      })
      const params = { ...flattenParams(declaration(name, 4 * (index + 1), 1e-4 * (index + 1))), "steps.train.key": `k-${index}-train` }
      yield* tracker.logParams(run.runId, params)
      const loss = Array.from({ length: 300 }, (_, step) => ({ step, value: 1 / (1 + step + index), timestamp: BASE_TIME + 10 * step }))
      // Logged in uneven slices, as a training loop would.
      for (let i = 0; i < loss.length; i += 37) {
        yield* tracker.logMetrics(run.runId, loss.slice(i, i + 37).map((p) => ({ key: "train/loss", ...p })))
      }
      const special = [NaN, Infinity, -Infinity, 0.25].map((value, step) => ({ step, value, timestamp: BASE_TIME + step }))
      yield* tracker.logMetrics(run.runId, special.map((p) => ({ key: "special", ...p })))
      const evaluation = [{ step: 300, value: 0.125 * (index + 1), timestamp: BASE_TIME + 5000 }]
      yield* tracker.logMetrics(run.runId, evaluation.map((p) => ({ key: "eval/ks", ...p })))
      const datasets: Array<DatasetInput> = [
        { name: "sar-train", digest: "a1b2c3d4", source: "/data/sar/train", context: "training" },
        { name: "sar-eval", digest: "e5f6a7b8", source: "https://example.org/sar/eval.zip", context: "evaluation" }
      ]
      yield* tracker.logInputs(run.runId, datasets)
      yield* tracker.setTags(run.runId, { "sardine.step.train": `k-${index}-train` })
      yield* tracker.logArtifact(run.runId, join(filesDir, "declaration.json"))
      yield* tracker.logArtifact(run.runId, join(filesDir, "checkpoint"), "checkpoints")
      const imageSteps = index === 0 ? [0, 1] : []
      for (const step of imageSteps) {
        yield* tracker.logImage(run.runId, { key: "samples/prompt 0", step, file: join(filesDir, "sample.png"), timestamp: BASE_TIME + step })
      }
      const status: RunEndStatus = index === 0 ? "FINISHED" : "FAILED"
      yield* tracker.endRun(run.runId, status, BASE_TIME + 9000)
      children.push({
        runId: run.runId,
        name,
        parentRunId: parent.runId,
        status,
        params,
        tags: { ...tags, "sardine.step.train": `k-${index}-train`, ...(imageSteps.length > 0 ? { "mlflow.loggedImages": "True" } : {}) },
        metrics: { "train/loss": loss, special, "eval/ks": evaluation },
        datasets,
        artifacts: {
          "declaration.json": files.declaration,
          "checkpoints/config.json": files.config,
          "checkpoints/unet/lora.safetensors": files.weights
        },
        imageSteps
      })
    }
    yield* tracker.endRun(parent.runId, "FINISHED", BASE_TIME + 10_000)
    return {
      experimentId,
      parent: {
        runId: parent.runId,
        name: "study-demo",
        status: "FINISHED",
        params: parentParams,
        tags: parentTags,
        metrics: {},
        datasets: [],
        artifacts: {},
        imageSteps: []
      },
      children
    }
  })
