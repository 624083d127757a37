import { Effect, Layer } from "effect"
import { join } from "node:path"
import * as ort from "onnxruntime-node"
import type { Embeddings } from "../../framework/metrics/embedding-distances.ts"
import type { Raster } from "../../framework/services/image-io.ts"
import { type ClipScorer, ClipScorers, ScorerError } from "../../framework/services/scorer.ts"
import { loadClipTokenizer } from "../tokenizer/tokenizer-files.ts"
import { checkClipImage, clipPixelValues, readClipImageConfig } from "./clip-image-preprocess.ts"

/**
 * The CLIP scorer on onnxruntime-node. A model folder holds (docs/sar-clip.md):
 *   image_encoder.onnx        float32 [batch, 3, H, W] → [batch, dim]
 *   text_encoder.onnx         int64 (or int32) [batch, context] → [batch, dim]
 *   vocab.json, merges.txt    the CLIP tokenizer (plus tokenizer_config.json for model_max_length)
 *   preprocessor_config.json  transformers' CLIPImageProcessor fields: size.shortest_edge,
 *                             crop_size.{height,width}, image_mean, image_std
 * Embeddings come back unit-normalised.
 */

const IMAGE_BATCH = 16
const TEXT_BATCH = 64

const problem = (file: string, reason: string) => new ScorerError({ file, reason })

/** An InferenceSession released with the scope. */
const session = (file: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => ort.InferenceSession.create(file),
      catch: (e) => problem(file, `cannot load the ONNX model: ${(e as Error).message}`)
    }),
    (s) =>
      Effect.tryPromise({ try: () => s.release(), catch: (e) => problem(file, `cannot release the ONNX session: ${(e as Error).message}`) }).pipe(
        Effect.catchAll((e) => Effect.logWarning(e.message))
      )
  )

type Metadata = { readonly name: string; readonly isTensor: boolean; readonly type?: string; readonly shape?: ReadonlyArray<number | string> }

const firstOutput = (file: string, s: ort.InferenceSession) => {
  const name = s.outputNames[0]
  return name === undefined ? Effect.fail(problem(file, "has no output")) : Effect.succeed(name)
}

const onlyInput = (file: string, s: ort.InferenceSession) => {
  const inputs = (s as unknown as { inputMetadata: ReadonlyArray<Metadata> }).inputMetadata
  const [only] = inputs
  return inputs.length === 1 && only !== undefined && only.isTensor
    ? Effect.succeed(only)
    : Effect.fail(problem(file, `must take exactly one tensor input, takes ${inputs.map((i) => i.name).join(", ")}`))
}

/** A fixed dimension of the model's input that disagrees with what sardine will feed it. */
const checkShape = (file: string, input: Metadata, expected: ReadonlyArray<number | undefined>) => {
  const shape = input.shape ?? []
  if (shape.length !== expected.length) {
    return Effect.fail(problem(file, `input ${input.name} has ${shape.length} dimensions, ${expected.length} are needed`))
  }
  for (let k = 0; k < shape.length; k++) {
    const e = expected[k]
    if (typeof shape[k] === "number" && e !== undefined && shape[k] !== e) {
      return Effect.fail(problem(file, `input ${input.name} has size ${shape[k]} in dimension ${k}, sardine feeds ${e}`))
    }
  }
  return Effect.void
}

/** The output rows scaled to unit length; `dim`, when known, is the size both encoders must share. */
const unitRows = (file: string, output: ort.Tensor, count: number, dim?: number): Effect.Effect<Float32Array, ScorerError> => {
  if (output.type !== "float32" || output.dims.length !== 2 || output.dims[0] !== count || (dim !== undefined && output.dims[1] !== dim)) {
    return Effect.fail(problem(file, `output must be float32 [${count}, ${dim ?? "dim"}], got ${output.type} [${output.dims.join(", ")}]`))
  }
  dim = output.dims[1]!
  const data = Float32Array.from(output.data as Float32Array)
  for (let r = 0; r < count; r++) {
    let norm = 0
    for (let k = 0; k < dim; k++) norm += data[r * dim + k]! ** 2
    norm = Math.sqrt(norm)
    if (!(norm > 0 && Number.isFinite(norm))) return Effect.fail(problem(file, `embedding ${r} has length ${norm}`))
    for (let k = 0; k < dim; k++) data[r * dim + k]! /= norm
  }
  return Effect.succeed(data)
}

/** Runs `items` in batches of `batch` and concatenates the unit embeddings. */
const batched = <T>(items: ReadonlyArray<T>, batch: number, dim: number, run: (part: ReadonlyArray<T>) => Effect.Effect<Float32Array, ScorerError>) =>
  Effect.gen(function*() {
    const data = new Float32Array(items.length * dim)
    for (let start = 0; start < items.length; start += batch) {
      const part = items.slice(start, start + batch)
      data.set(yield* run(part), start * dim)
    }
    return data
  })

const load = (folder: string) =>
  Effect.gen(function*() {
    const imageFile = join(folder, "image_encoder.onnx")
    const textFile = join(folder, "text_encoder.onnx")
    const config = yield* readClipImageConfig(join(folder, "preprocessor_config.json"))
    const tokenizer = yield* Effect.mapError(loadClipTokenizer(folder), (e) => problem(e.file, e.reason))
    const imageSession = yield* session(imageFile)
    const textSession = yield* session(textFile)
    const imageInput = yield* onlyInput(imageFile, imageSession)
    const textInput = yield* onlyInput(textFile, textSession)
    yield* checkShape(imageFile, imageInput, [undefined, 3, config.cropHeight, config.cropWidth])
    yield* checkShape(textFile, textInput, [undefined, tokenizer.maxLength])
    if (textInput.type !== "int64" && textInput.type !== "int32") {
      return yield* problem(textFile, `input ${textInput.name} must be int64 or int32 token ids, is ${textInput.type}`)
    }
    const imageOutput = yield* firstOutput(imageFile, imageSession)
    const textOutput = yield* firstOutput(textFile, textSession)
    const run = (file: string, s: ort.InferenceSession, input: string, output: string, tensor: ort.Tensor, count: number, dim?: number) =>
      Effect.tryPromise({
        try: () => s.run({ [input]: tensor }),
        catch: (e) => problem(file, `inference failed: ${(e as Error).message}`)
      }).pipe(Effect.flatMap((outputs) => {
        const tensor = outputs[output]
        return tensor === undefined ? Effect.fail(problem(file, `inference gave no output ${output}`)) : unitRows(file, tensor, count, dim)
      }))

    // The embedding size, from one blank image: the models declare it only as a symbolic shape at times.
    const probe = yield* run(
      imageFile,
      imageSession,
      imageInput.name,
      imageOutput,
      new ort.Tensor("float32", new Float32Array(3 * config.cropHeight * config.cropWidth).fill(1), [1, 3, config.cropHeight, config.cropWidth]),
      1
    )
    const dim = probe.length

    const embedImages = (images: ReadonlyArray<Raster>): Effect.Effect<Embeddings, ScorerError> =>
      Effect.gen(function*() {
        yield* Effect.forEach(images, checkClipImage, { discard: true })
        const data = yield* batched(images, IMAGE_BATCH, dim, (part) =>
          run(
            imageFile,
            imageSession,
            imageInput.name,
            imageOutput,
            new ort.Tensor("float32", clipPixelValues(part, config), [part.length, 3, config.cropHeight, config.cropWidth]),
            part.length,
            dim
          ))
        return { name: `${folder} image embeddings`, count: images.length, dim, data }
      })

    const embedTexts = (texts: ReadonlyArray<string>): Effect.Effect<Embeddings, ScorerError> =>
      Effect.gen(function*() {
        const data = yield* batched(texts, TEXT_BATCH, dim, (part) => {
          const ids = tokenizer.encodeBatch(part)
          const tensor = textInput.type === "int64"
            ? new ort.Tensor("int64", BigInt64Array.from(ids, (v) => BigInt(v)), [part.length, tokenizer.maxLength])
            : new ort.Tensor("int32", ids, [part.length, tokenizer.maxLength])
          return run(textFile, textSession, textInput.name, textOutput, tensor, part.length, dim)
        })
        return { name: `${folder} text embeddings`, count: texts.length, dim, data }
      })

    const scorer: ClipScorer = { dim, embedImages, embedTexts }
    return scorer
  })

/** The real ClipScorers: ONNX models through onnxruntime-node (CPU). */
export const OnnxClipScorersLive = Layer.succeed(ClipScorers, { load })
