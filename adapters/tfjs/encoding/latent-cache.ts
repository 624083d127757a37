import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema, type Scope } from "effect"
import { join } from "node:path"
import type { SafetensorsError } from "../../safetensors/safetensors-error.ts"
import { autoencoderKlEncode } from "../autoencoder-kl.ts"
import { layersOf } from "../layers.ts"
import { disposeParameters } from "../checkpoint.ts"
import { loadAutoencoderKl, type LoadError } from "../pipeline-loader.ts"
import { type PreparedDataError, readPreparedIndex, readPreparedPixels } from "../../../framework/steps/prepared-dataset.ts"
import { DataFolderError, readIndexFile, writeIndexFile } from "../training/index-files.ts"
import { shardedReader, shardedWriter } from "../training/sharded-tensors.ts"
import { encodedValues } from "./encoded-values.ts"
import { imageBatch } from "./image-batch.ts"

/**
 * The `encode-latents` step: the frozen VAE's latent distribution of every prepared sample (the
 * prepare-data folder of framework/steps/prepared-dataset.ts), so
 * training never runs the encoder. The distribution (mean, log-variance, unscaled) is kept rather
 * than one draw, so training samples a fresh latent at each step exactly as without the cache:
 *   latents.json              index: scaling and shift factors, each sample's tensors
 *   latents-00000.safetensors `<i>` tensors: mean and logvar, NHWC without the batch axis
 */

export const LATENT_INDEX = "latents.json"

const Location = Schema.Struct({ file: Schema.String, tensor: Schema.String })

export const LatentIndex = Schema.Struct({
  format: Schema.Literal("sardine-latents"),
  version: Schema.Literal(1),
  scalingFactor: Schema.Number,
  shiftFactor: Schema.NullOr(Schema.Number),
  /** [height, width, channels] of every latent. */
  shape: Schema.Tuple(Schema.Int, Schema.Int, Schema.Int),
  samples: Schema.Array(Schema.Struct({ id: Schema.String, mean: Location, logvar: Location }))
})
export type LatentIndex = typeof LatentIndex.Type

/** Images per VAE call. */
const BATCH = 4

export const encodeLatents = (
  vaeFolder: string,
  dataDir: string,
  outDir: string,
  progress: (done: number, total: number) => Effect.Effect<void>
): Effect.Effect<void, LoadError | DataFolderError | PreparedDataError | SafetensorsError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const prepared = yield* readPreparedIndex(dataDir)
      const vae = yield* Effect.acquireRelease(loadAutoencoderKl(vaeFolder), (m) => Effect.sync(() => disposeParameters(m.parameters)))
      const writer = shardedWriter(outDir, "latents")
      const layers = layersOf(vae.parameters)
      const samples: Array<LatentIndex["samples"][number]> = []
      let shape: readonly [number, number, number] = [0, 0, 0]
      for (let start = 0; start < prepared.samples.length; start += BATCH) {
        const chunk = prepared.samples.slice(start, start + BATCH)
        const images = yield* Effect.forEach(chunk, (s) =>
          readPreparedPixels(dataDir, s).pipe(
            Effect.map((data) => ({ pixels: data, height: prepared.height, width: prepared.width, channels: prepared.channels }))
          ))
        const { mean, logvar } = yield* Effect.try({
          try: () => {
            const batch = imageBatch(images, vae.plan.config.in_channels)
            const dist = autoencoderKlEncode(vae.plan, layers, batch)
            batch.dispose()
            return dist
          },
          catch: (e) => new DataFolderError({ file: dataDir, reason: (e as Error).message })
        })
        const [, h, w, c] = mean.shape
        shape = [h, w, c]
        const meanData = yield* encodedValues(mean, dataDir)
        const logvarData = yield* encodedValues(logvar, dataDir)
        tf.dispose([mean, logvar])
        const size = h * w * c
        for (let i = 0; i < chunk.length; i++) {
          samples.push({
            id: chunk[i]!.id,
            mean: yield* writer.add(shape, meanData.slice(i * size, (i + 1) * size)),
            logvar: yield* writer.add(shape, logvarData.slice(i * size, (i + 1) * size))
          })
        }
        yield* progress(samples.length, prepared.samples.length)
      }
      yield* writer.finish
      const c = vae.plan.config
      const index: LatentIndex = { format: "sardine-latents", version: 1, scalingFactor: c.scaling_factor, shiftFactor: c.shift_factor, shape, samples }
      yield* writeIndexFile(join(outDir, LATENT_INDEX), index)
    })
  )

export interface LatentCache {
  readonly index: LatentIndex
  /** The distribution of sample `i` of the index. */
  readonly read: (i: number) => Effect.Effect<{ readonly mean: Float32Array; readonly logvar: Float32Array }, SafetensorsError>
}

export const openLatentCache = (dir: string): Effect.Effect<LatentCache, DataFolderError, Scope.Scope> =>
  Effect.gen(function*() {
    const index = yield* readIndexFile(join(dir, LATENT_INDEX), LatentIndex)
    const reader = yield* shardedReader(dir)
    return {
      index,
      read: (i) => Effect.all({ mean: reader.read(index.samples[i]!.mean), logvar: reader.read(index.samples[i]!.logvar) })
    }
  })
