import type * as tf from "@tensorflow/tfjs-core"
import { Effect } from "effect"
import { type PreparedDataError, type PreparedIndex, readPreparedPixels } from "../../../framework/steps/prepared-dataset.ts"
import type { Raster } from "../../../framework/services/image-io.ts"
import type { ClipImageConfig } from "../../onnx/clip-image-preprocess.ts"
import type { ClipTokenizer } from "../../tokenizer/clip-tokenizer.ts"
import { clipPixelTensor } from "../clip-pixel-values.ts"
import { type EpochOrders, sampleIndices } from "../training/micro-batch.ts"

/**
 * The image–caption pairs of a training step, drawn from (seed, step) alone: epoch after epoch of
 * seeded shuffles of the prepared data, as the diffusion trainer draws its samples, so a resumed run
 * sees exactly the batches an uninterrupted one would.
 */

export interface ClipPairs {
  readonly captions: ReadonlyArray<string>
  /** Token ids of each distinct caption once (synthetic captions repeat; their text features are equal). */
  readonly inputIds: ReadonlyArray<Int32Array>
  /** Which row of `inputIds` each pair's caption is. */
  readonly captionRows: Int32Array
  /** Preprocessed pixels, NHWC [B, size, size, 3]. */
  readonly pixels: tf.Tensor4D
}

/** One prepared folder of pairs. */
export interface PreparedPairs {
  readonly dataDir: string
  readonly prepared: PreparedIndex
}

/** A pair: a prepared sample and the folder it lies in. */
export interface PairInFolder {
  readonly folder: PreparedPairs
  readonly sample: PreparedIndex["samples"][number]
}

export interface ClipPairSource {
  /** Every declared dataset's pairs, drawn from as one list (the folders in order: `pairsOf`). */
  readonly pairs: ReadonlyArray<PairInFolder>
  readonly image: ClipImageConfig
  readonly tokenizer: ClipTokenizer
}

/** The pairs of all folders as one list: each sample with the folder it lies in. */
export const pairsOf = (folders: ReadonlyArray<PreparedPairs>): ReadonlyArray<PairInFolder> =>
  folders.flatMap((folder) => folder.prepared.samples.map((sample) => ({ folder, sample })))

/** A prepared sample (HWC in [−1, 1]) as the image in [0, 1] a CLIP scorer would be given. */
export const rasterOfPrepared = (prepared: PreparedIndex, pixels: Float32Array): Raster => {
  const data = new Float32Array(pixels.length)
  for (let i = 0; i < data.length; i++) data[i] = Math.min(1, Math.max(0, (pixels[i]! + 1) / 2))
  return { width: prepared.width, height: prepared.height, channels: prepared.channels, data }
}

export const loadClipPairs = (
  at: { readonly seed: number; readonly step: number; readonly batchSize: number },
  source: ClipPairSource,
  orders: EpochOrders
): Effect.Effect<ClipPairs, PreparedDataError> =>
  Effect.gen(function*() {
    const { pairs } = source
    const indices = sampleIndices({ ...at, micro: 0, microBatches: 1 }, pairs.length, orders)
    const picked = indices.map((i) => pairs[i]!)
    const images = yield* Effect.forEach(picked, ({ folder, sample }) =>
      Effect.map(readPreparedPixels(folder.dataDir, sample), (pixels) => rasterOfPrepared(folder.prepared, pixels)))
    const captions = picked.map(({ sample }) =>
      sample.caption
    )
    const distinct = [...new Set(captions)]
    return {
      captions,
      inputIds: distinct.map((c) => source.tokenizer.encode(c)),
      captionRows: Int32Array.from(captions, (c) => distinct.indexOf(c)),
      pixels: clipPixelTensor(images, source.image)
    }
  })
