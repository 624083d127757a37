import { Effect, Option } from "effect"
import { join } from "node:path"
import { intervalKeys, retrievalSettingKeys, TRACKED_METRICS } from "../metrics/metric-catalog.ts"
import type { SampleImage } from "../metrics/metric-input.ts"
import { readManifestIn } from "../runner/cache.ts"
import type { StepContext } from "../runner/step-handler.ts"
import { type GeneratedSample, samplesIndexFile } from "../services/engine.ts"
import { ImageIO } from "../services/image-io.ts"
import { evaluateImages } from "./evaluate-images.ts"
import { evaluationFile, type EvaluationResult } from "./evaluation-result.ts"
import { readJson, writeJsonAtomic } from "./json-files.ts"
import { amplitudeOfPrepared, pairedEvaluation } from "./paired-evaluation.ts"
import { readPreparedIndex, readPreparedPixels } from "./prepared-dataset.ts"

export { amplitudeOfPrepared } from "./paired-evaluation.ts"

/**
 * Judges an experiment's samples against the real reference set (evaluate-images.ts), with a
 * confidence interval for every number, and logs each metric and its interval to MLflow.
 */
export const evaluate = (context: StepContext<"evaluate">) =>
  Effect.gen(function*() {
    const io = yield* ImageIO
    const samplesDir = context.input("samples").dir
    const referenceDir = context.input("reference").dir
    const samples = yield* readJson<ReadonlyArray<GeneratedSample>>(join(samplesDir, samplesIndexFile))
    const reference = yield* readPreparedIndex(referenceDir)
    const referenceManifest = yield* readManifestIn(referenceDir)
    const generateManifest = yield* readManifestIn(samplesDir)
    const train = Option.fromNullable(generateManifest.inputs.find((i) => i.role === "model")?.key)
    const { alignment, estimates, previews } = yield* evaluateImages({
      experiments: context.step.experiments,
      generated: samples.map((sample) => ({
        read: io.read(join(samplesDir, sample.tiff)),
        name: join(samplesDir, sample.tiff),
        promptIndex: sample.promptIndex,
        prompt: sample.prompt,
        declaredPrompt: sample.declaredPrompt,
        split: sample.split,
        seed: sample.seed,
        png: join(samplesDir, sample.png)
      })),
      reference: reference.samples.map((sample) => ({
        read: Effect.map(readPreparedPixels(referenceDir, sample), (pixels) => amplitudeOfPrepared(reference, pixels, sample.source)),
        caption: sample.caption
      })),
      referenceKey: referenceManifest.key,
      options: context.step.config.evaluate,
      resolveClip: context.resolvePath,
      lineage: {
        generate: generateManifest.key,
        reference: referenceManifest.key,
        ...Option.match(train, { onNone: () => ({}), onSome: (key) => ({ train: key }) })
      },
      workDir: context.workDir,
      progress: context.progress,
      log: context.log
    })

    // A conditioned experiment's samples, each against the true image of its scene, added to evaluation.json.
    const conditions = context.inputs("conditions")
    if (conditions.length === 1) {
      const amplitude = context.step.config.evaluate.amplitude
      const images = yield* Effect.forEach(samples, (sample) =>
        Effect.map(io.read(join(samplesDir, sample.tiff)), (raster): SampleImage => {
          const data = new Float32Array(raster.width * raster.height)
          for (let p = 0; p < data.length; p++) {
            let sum = 0
            for (let c = 0; c < raster.channels; c++) sum += raster.data[p * raster.channels + c]!
            data[p] = sum / raster.channels
          }
          return { name: join(samplesDir, sample.tiff), width: raster.width, height: raster.height, data }
        }))
      const paired = yield* pairedEvaluation(samples, images, conditions[0]!.dir, {
        domain: amplitude.domain === "amplitude" ? { kind: "amplitude" } : { kind: "db", floorDb: amplitude.floorDb },
        bins: amplitude.bins,
        klPseudoCount: amplitude.klPseudoCount,
        uncertainty: context.step.config.evaluate.uncertainty,
        previews: { dir: context.workDir, generated: previews.generated.map((p) => p.file) }
      })
      const file = join(context.workDir, evaluationFile)
      yield* writeJsonAtomic(file, { ...(yield* readJson<EvaluationResult>(file)), paired })
    }

    // Each metric and its interval's bounds (MLflow keys from the metric catalog).
    const metrics: Record<string, number> = {}
    for (const { id } of TRACKED_METRICS) {
      const estimate = estimates[id]
      if (estimate === undefined || !Number.isFinite(estimate.value)) continue
      const keys = intervalKeys(id)
      metrics[id] = estimate.value
      if (Number.isFinite(estimate.low)) metrics[keys.low] = estimate.low
      if (Number.isFinite(estimate.high)) metrics[keys.high] = estimate.high
    }
    const following = alignment?.promptFollowing
    if (following !== undefined && !("absent" in following)) {
      Object.assign(metrics, {
        [retrievalSettingKeys.prompts]: following.prompts,
        [retrievalSettingKeys.k]: following.k,
        [retrievalSettingKeys.top1Chance]: following.chance.top1,
        [retrievalSettingKeys.topkChance]: following.chance.topk
      })
    }
    yield* context.tracking.metrics(0, metrics)
    yield* context.tracking.artifact(join(context.workDir, evaluationFile), "evaluation")
  })
