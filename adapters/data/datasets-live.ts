import { FileSystem } from "@effect/platform"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Chunk, Effect, Layer, Stream } from "effect"
import type { Dataset } from "../../framework/declaration/dataset.ts"
import { Datasets, type DatasetItem, type LoadedDataset, type PrepareOptions } from "../../framework/services/datasets.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { inspectFolder } from "./folder-inspection.ts"
import { imageFolderSamples } from "./image-folder-samples.ts"
import { inspectShards } from "./webdataset-inspection.ts"
import { webDatasetSamples } from "./webdataset-samples.ts"
import { syntheticSamples } from "./synthetic/synthetic-samples.ts"
import { writeSyntheticDataset } from "./synthetic/synthetic-writer.ts"

/**
 * The real Datasets service: imagefolders through ImageIO, synthetic scenes from the generator, on
 * Node's filesystem (its operations require nothing, so the layer provides it).
 */
export const DatasetsLive = Layer.effect(
  Datasets,
  Effect.gen(function*() {
    const io = yield* ImageIO
    const fs = yield* FileSystem.FileSystem
    const samples = (dataset: Dataset, options: PrepareOptions = {}) =>
      dataset._tag === "image-folder"
        ? imageFolderSamples(io, dataset, options).pipe(Stream.provideService(FileSystem.FileSystem, fs))
        : dataset._tag === "webdataset"
        ? webDatasetSamples(dataset, options)
        : syntheticSamples(dataset, options)
    return {
      samples,
      load: (dataset, options) =>
        Stream.runCollect(samples(dataset, options)).pipe(
          Effect.map((items): LoadedDataset => {
            const all: Array<DatasetItem> = Chunk.toArray(items)
            return {
              samples: all.flatMap((item) => (item._tag === "Sample" ? [item.sample] : [])),
              skipped: all.flatMap((item) => (item._tag === "Skipped" ? [item.skipped] : []))
            }
          })
        ),
      inspect: (folder, options) => inspectFolder(io, folder, options).pipe(Effect.provideService(FileSystem.FileSystem, fs)),
      inspectShards: (patterns, options) => inspectShards(patterns, options).pipe(Effect.provideService(FileSystem.FileSystem, fs)),
      writeSynthetic: (dataset, folder) =>
        writeSyntheticDataset(dataset, folder).pipe(Effect.provideService(ImageIO, io), Effect.provideService(FileSystem.FileSystem, fs))
    }
  })
).pipe(Layer.provide(NodeFileSystem.layer))
