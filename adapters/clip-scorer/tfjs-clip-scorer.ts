import * as tf from "@tensorflow/tfjs-core"
import { Effect, Layer } from "effect"
import type { Embeddings } from "../../framework/metrics/embedding-distances.ts"
import type { Raster } from "../../framework/services/image-io.ts"
import { type ClipScorer, ClipScorers, ScorerError } from "../../framework/services/scorer.ts"
import { checkClipImage } from "../onnx/clip-image-preprocess.ts"
import { selectBackend } from "../tfjs/backend.ts"
import { clipImageFeatures, clipTextFeatures } from "../tfjs/clip-model.ts"
import { loadClipModelWeights, readClipModelDescription } from "../tfjs/clip-model-folder.ts"
import { clipPixelTensor } from "../tfjs/clip-pixel-values.ts"
import { disposeParameters } from "../tfjs/checkpoint.ts"
import { layersOf } from "../tfjs/layers.ts"

/**
 * The CLIP scorer on tfjs, for transformers CLIPModel folders (what `clipModel` declarations train):
 * the same preprocessing (clip-image-preprocess.ts), tokenizer and unit embeddings as the ONNX
 * scorer, so one model scores the same in either form. Runs on the engine's tfjs backend, or picks
 * one (SARDINE_BACKEND or the fastest) when nothing chose it yet.
 */

const IMAGE_BATCH = 16
const TEXT_BATCH = 64

/** The backend the engine activated, or the one sardine would pick. */
const ensureBackend = (folder: string) =>
  tf.engine().backendName
    ? Effect.void
    : Effect.asVoid(Effect.mapError(selectBackend(), (e) => new ScorerError({ file: folder, reason: e.message })))

/** Rows of `features` scaled to unit length, read off the backend. */
const unitRows = (folder: string, features: tf.Tensor2D): Effect.Effect<Float32Array, ScorerError> => {
  const [count, dim] = features.shape
  const data = features.dataSync() as Float32Array
  features.dispose()
  for (let r = 0; r < count; r++) {
    let norm = 0
    for (let k = 0; k < dim; k++) norm += data[r * dim + k]! ** 2
    norm = Math.sqrt(norm)
    if (!(norm > 0 && Number.isFinite(norm))) return Effect.fail(new ScorerError({ file: folder, reason: `embedding ${r} has length ${norm}` }))
    for (let k = 0; k < dim; k++) data[r * dim + k]! /= norm
  }
  return Effect.succeed(data)
}

const load = (folder: string) =>
  Effect.gen(function*() {
    yield* ensureBackend(folder)
    const asScorerError = (e: { readonly file: string; readonly reason: string }) => new ScorerError({ file: e.file, reason: e.reason })
    const { image, plan, tokenizer } = yield* Effect.mapError(readClipModelDescription(folder, { preprocessorRequired: true }), asScorerError)
    const parameters = yield* Effect.acquireRelease(
      Effect.mapError(loadClipModelWeights(folder, plan), asScorerError),
      (p) => Effect.sync(() => disposeParameters(p))
    )
    const layers = layersOf(parameters)
    const dim = plan.config.projection_dim
    const compute = (what: string, f: () => tf.Tensor2D) =>
      Effect.try({ try: f, catch: (e) => new ScorerError({ file: folder, reason: `${what}: ${(e as Error).message}` }) }).pipe(
        Effect.flatMap((features) => unitRows(folder, features))
      )

    /** Runs `items` in batches and concatenates the unit embeddings. */
    const batched = <T>(items: ReadonlyArray<T>, batch: number, run: (part: ReadonlyArray<T>) => Effect.Effect<Float32Array, ScorerError>) =>
      Effect.gen(function*() {
        const data = new Float32Array(items.length * dim)
        for (let start = 0; start < items.length; start += batch) data.set(yield* run(items.slice(start, start + batch)), start * dim)
        return data
      })

    const embedImages = (images: ReadonlyArray<Raster>): Effect.Effect<Embeddings, ScorerError> =>
      Effect.gen(function*() {
        yield* Effect.forEach(images, checkClipImage, { discard: true })
        const data = yield* batched(images, IMAGE_BATCH, (part) =>
          compute("image embeddings", () => tf.tidy(() => clipImageFeatures(plan, layers, clipPixelTensor(part, image)))))
        return { name: `${folder} image embeddings`, count: images.length, dim, data }
      })

    const embedTexts = (texts: ReadonlyArray<string>): Effect.Effect<Embeddings, ScorerError> =>
      Effect.gen(function*() {
        const data = yield* batched(texts, TEXT_BATCH, (part) =>
          compute("text embeddings", () =>
            clipTextFeatures(plan, layers, part.map((text) => tokenizer.encode(text)))))
        return { name: `${folder} text embeddings`, count: texts.length, dim, data }
      })

    const scorer: ClipScorer = { dim, embedImages, embedTexts }
    return scorer
  })

/** ClipScorers for transformers CLIPModel folders, on tfjs. */
export const TfjsClipScorersLive = Layer.succeed(ClipScorers, { load })
