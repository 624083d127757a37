import * as tf from "@tensorflow/tfjs-core"
import { Effect, Option } from "effect"
import { join } from "node:path"
import type { TrainClipRequest } from "../../../framework/services/engine.ts"
import { type PreparedDataError, readPreparedIndex } from "../../../framework/steps/prepared-dataset.ts"
import type { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { clipImageFeatures, clipModelSpecs, type ClipModelPlan, clipTextFeatures, LOGIT_SCALE, unitRows } from "../clip-model.ts"
import { CLIP_WEIGHTS, ClipFolderError, readClipModelDescription, writeClipModelFolder } from "../clip-model-folder.ts"
import { layersOf, type ParameterSpec } from "../layers.ts"
import { pathExists } from "../node-file-system.ts"
import { type AdamWState, adamwStep, disposeAdamW } from "../training/adamw.ts"
import { globalNorm } from "../training/gradient-norm.ts"
import { DataFolderError } from "../training/index-files.ts"
import { learningRateFactor } from "../training/learning-rate.ts"
import type { EpochOrders } from "../training/micro-batch.ts"
import "../training/register-gradients.ts"
import type { Trainable } from "../training/trainable-model.ts"
import { prepareBackendForTraining, TrainingComputationError } from "../training/trainer.ts"
import { restoreCheckpoint, saveCheckpoint, type StepRecord } from "../training/training-checkpoint.ts"
import { type ClipPairs, loadClipPairs, pairsOf } from "./clip-batches.ts"
import { initialClipParameters } from "./clip-initialisation.ts"
import { captionTargets, contrastiveLoss, retrievalAccuracy } from "./contrastive-loss.ts"
import { fileProblem } from "../../../framework/files/file-errors.ts"

/**
 * Trains a CLIPModel from nothing on prepared image–caption pairs, as CLIP is trained: symmetric
 * InfoNCE over the batch with a learned temperature (clamped so the logits are scaled by at most 100),
 * AdamW with decoupled weight decay on the matrices only (not on gains, biases, embedding tables or
 * the temperature, as open_clip excludes them), linear warm-up then a half cosine to 0. Weights start
 * as transformers initialises them, from the declaration's seed; batches come from the training seed
 * and the step. Checkpoints in the work folder make an interrupted run resume exactly; the result is
 * a transformers CLIPModel folder at `<workDir>/model/`.
 */

/** The engine's train-clip request, with where the trained model goes (inside the work folder). */
export type ClipTrainRun = TrainClipRequest & { readonly out: string }

export type ClipTrainError = ClipFolderError | PreparedDataError | DataFolderError | SafetensorsError | TrainingComputationError

/** CLIP's bound on the temperature: logits are scaled by at most 100. */
const MAX_LOGIT_SCALE = Math.log(100)
/** open_clip's Adam epsilon for CLIP training. */
const EPSILON = 1e-6
const GROUP = "clip"

/** Matrices decay; gains, biases, the token and position tables, the class token and the temperature do not. */
export const decays = (spec: ParameterSpec): boolean => spec.shape.length >= 2 && !/(token|position)_embedding\.weight$/.test(spec.name)

const compute = <A>(operation: string, f: () => A) =>
  Effect.try({ try: f, catch: (e) => new TrainingComputationError({ operation, reason: e instanceof Error ? e.message : String(e) }) })

interface StepResult {
  readonly loss: number
  readonly logits: Float32Array
  readonly gradients: Map<string, tf.Tensor>
}

/** The loss of a batch (CLIPModel's logits, each distinct caption encoded once) and its gradients. */
const lossAndGradients = (plan: ClipModelPlan, trainables: ReadonlyArray<Trainable>, pairs: ClipPairs): StepResult => {
  const variables = new Map(trainables.map((t) => [t.name, t.variable as tf.Tensor]))
  const byVariable = new Map(trainables.map((t) => [t.variable.name, t.name]))
  const targets = tf.tensor2d(captionTargets(pairs.captions), [pairs.captions.length, pairs.captions.length])
  const rows = tf.tensor1d(pairs.captionRows, "int32")
  let logits: tf.Tensor2D | undefined
  const { grads, value } = tf.variableGrads(() => {
    const layers = layersOf(variables)
    const images = unitRows(clipImageFeatures(plan, layers, pairs.pixels))
    const texts = tf.gather(unitRows(clipTextFeatures(plan, layers, pairs.inputIds)), rows)
    const logitsPerImage = tf.mul(tf.matMul(images, texts, false, true), tf.exp(layers.parameter(LOGIT_SCALE))) as tf.Tensor2D
    logits = tf.keep(logitsPerImage)
    return contrastiveLoss(logitsPerImage, targets)
  }, trainables.map((t) => t.variable))
  const loss = value.dataSync()[0]!
  const values = logits!.dataSync() as Float32Array
  tf.dispose([value, targets, rows, logits!])
  return { loss, logits: values, gradients: new Map(Object.entries(grads).map(([variable, g]) => [byVariable.get(variable)!, g])) }
}

export const trainClipModel = (run: ClipTrainRun): Effect.Effect<void, ClipTrainError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const train = run.train
      yield* prepareBackendForTraining
      const weights = join(run.architecture, CLIP_WEIGHTS)
      const weightsPresent = yield* pathExists(weights).pipe(
        Effect.mapError((e) => new ClipFolderError({ file: weights, reason: fileProblem(e), cause: e }))
      )
      if (weightsPresent) {
        return yield* new ClipFolderError({
          file: weights,
          reason: "an architecture folder holds the config and tokenizer files, not weights: a clipModel trains from nothing"
        })
      }
      const description = yield* readClipModelDescription(run.architecture, { preprocessorRequired: false })
      const { plan, tokenizer } = description
      const folders = yield* Effect.forEach(run.dataDirs, (dataDir) => Effect.map(readPreparedIndex(dataDir), (prepared) => ({ dataDir, prepared })))
      const all = pairsOf(folders)
      if (all.length < 2) {
        return yield* new DataFolderError({
          file: run.dataDirs.map((dir) => join(dir, "index.json")).join(", "),
          reason: `${run.dataDirs.length === 1 ? "holds" : "hold together"} fewer than 2 pairs; contrastive training needs other pairs as negatives`
        })
      }
      const truncated = new Set(all.map(({ sample }) => sample.caption).filter((c) => tokenizer.tokenIds(c).length + 2 > tokenizer.maxLength))
      if (truncated.size > 0) {
        yield* run.log(`${truncated.size} distinct captions exceed the ${tokenizer.maxLength}-token context and are cut, e.g. "${[...truncated][0]}"`)
      }

      const specs = clipModelSpecs(plan)
      const trainables: ReadonlyArray<Trainable> = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const initial = initialClipParameters(plan, run.seed)
          return specs.map((spec) => {
            // The variable takes over the tensor's data; the tensor handle is released.
            const tensor = initial.get(spec.name)!
            const variable = tf.variable(tensor, true)
            tensor.dispose()
            return { name: spec.name, variable, group: GROUP }
          })
        }),
        (ts) => Effect.sync(() => ts.forEach((t) => t.variable.dispose()))
      )
      const restored = yield* restoreCheckpoint(run.workDir, trainables, train.seed)
      const adam: AdamWState = yield* Effect.acquireRelease(
        Effect.sync(() => (Option.isSome(restored) ? restored.value.adam : new Map() as AdamWState)),
        (state) => Effect.sync(() => disposeAdamW(state))
      )
      const history: Array<StepRecord> = Option.isSome(restored) ? [...restored.value.history] : []
      const first = Option.isSome(restored) ? restored.value.step : 0
      if (first > 0) yield* run.log(`resuming from the checkpoint at step ${first} of ${train.steps}`)
      const decaying = new Set(specs.filter(decays).map((s) => s.name))
      const logitScale = trainables.find((t) => t.name === LOGIT_SCALE)!.variable
      const source = { pairs: all, image: description.image, tokenizer }
      const orders: EpochOrders = new Map()

      for (let step = first; step < train.steps; step++) {
        const started = performance.now()
        const pairs = yield* loadClipPairs({ seed: train.seed, step, batchSize: train.batchSize }, source, orders)
        const result = yield* compute(`training step ${step + 1}`, () => lossAndGradients(plan, trainables, pairs)).pipe(
          Effect.ensuring(Effect.sync(() => pairs.pixels.dispose()))
        )
        const lr = train.lr * learningRateFactor({ warmupSteps: train.warmupSteps, decay: "cosine" }, step, train.steps)
        const gradNorm = yield* compute(`optimiser step ${step + 1}`, () => {
          const norm = globalNorm([...result.gradients.values()])
          adamwStep(
            trainables.flatMap((t) => {
              const gradient = result.gradients.get(t.name)
              return gradient === undefined
                ? []
                : [{ name: t.name, variable: t.variable, gradient, lr, weightDecay: decaying.has(t.name) ? train.weightDecay : 0 }]
            }),
            adam,
            { beta1: train.beta1, beta2: train.beta2, epsilon: EPSILON }
          )
          const clamped = tf.tidy(() => tf.clipByValue(logitScale, 0, MAX_LOGIT_SCALE))
          logitScale.assign(clamped)
          clamped.dispose()
          return norm
        }).pipe(Effect.ensuring(Effect.sync(() => tf.dispose([...result.gradients.values()]))))
        const accuracy = retrievalAccuracy(result.logits, pairs.captions)
        const seconds = (performance.now() - started) / 1000
        const record: StepRecord = { step: step + 1, loss: result.loss, gradNorm, lr: { [GROUP]: lr }, imagesPerSecond: train.batchSize / seconds }
        history.push(record)
        yield* run.metrics(record.step, {
          loss: result.loss,
          "accuracy/image_to_text": accuracy.imageToText,
          "accuracy/text_to_image": accuracy.textToImage,
          lr,
          logit_scale: Math.exp(logitScale.dataSync()[0]!),
          grad_norm: gradNorm,
          pairs_per_s: record.imagesPerSecond
        })
        yield* run.progress(step + 1, train.steps, "steps")
        if ((step + 1) % train.checkpointEvery === 0 || step + 1 === train.steps) {
          yield* saveCheckpoint(run.workDir, { step: step + 1, seed: train.seed, trainables, adam, ema: undefined, history })
        }
      }
      const parameters = new Map(trainables.map((t) => [t.name, t.variable as tf.Tensor]))
      yield* writeClipModelFolder(run.out, run.architecture, description, parameters)
    })
  )
