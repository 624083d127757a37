import { Effect, Stream } from "effect"
import type { SyntheticDataset } from "../../../framework/declaration/dataset.ts"
import { combineMoments, emptyMoments, meanStdOf, momentsOf, normalise, toTrainingRange } from "../../../framework/sar/normalisation.ts"
import { oneHot, opticalCondition } from "../../../framework/conditioning/condition-encoding.ts"
import { DatasetError, type DatasetItem, type PrepareOptions, type TrainingSample } from "../../../framework/services/datasets.ts"
import type { Raster } from "../../../framework/services/image-io.ts"
import { applyCaptionTemplate, checkTemplate } from "../caption-template.ts"
import { generateScene } from "./scene-generator.ts"

/*
 * Training samples straight from the generator, scene by scene (nothing is written to disk):
 * SAR amplitude through the declared normalisation, or the optical rendering scaled from 0–255.
 */

const unitRange = (rgb: Float32Array) => {
  const out = new Float32Array(rgb.length)
  for (let i = 0; i < rgb.length; i++) out[i] = Math.min(1, Math.max(0, rgb[i]! / 255))
  return out
}

/** One band in [0, 1]: the mean of R, G and B (0–255), as decodeAmplitude reduces a three-channel sample. */
const greyUnitRange = (rgb: Float32Array) => {
  const out = new Float32Array(rgb.length / 3)
  for (let p = 0; p < out.length; p++) out[p] = Math.min(1, Math.max(0, (rgb[3 * p]! + rgb[3 * p + 1]! + rgb[3 * p + 2]!) / (3 * 255)))
  return out
}

/**
 * The optical rendering as the writer's 8-bit PNG holds it (synthetic-writer.ts): rounded, and clipped to 0–255
 * (the renderer's colour variation can pass 255), so a scene conditions alike read from memory or from its file.
 */
const asPng8 = (optical: Float32Array): Float32Array => optical.map((v) => (v > 0 ? (v < 255 ? Math.round(v) : 255) : 0))

export const syntheticSamples = (
  dataset: SyntheticDataset,
  options: PrepareOptions = {}
): Stream.Stream<DatasetItem, DatasetError> =>
  Stream.unwrap(
    Effect.gen(function*() {
      const template = dataset.captionTemplate
      const templateProblem = checkTemplate(template, options.token)
      if (templateProblem !== undefined) {
        return yield* new DatasetError({ path: `synthetic:${dataset.seed}`, reason: templateProblem })
      }
      const sar = dataset.modality === "sar"
      const condition = options.condition
      // Validation allows only the generator's own columns and classes, so encoding cannot fail here.
      const conditionOf = (labels: Uint8Array, optical: Float32Array | undefined): Raster | undefined => {
        if (condition === undefined) return undefined
        const encoded = condition.input === "label-map"
          ? oneHot(Float32Array.from(labels), dataset.size, condition.classValues ?? [])
          : opticalCondition({ width: dataset.size, height: dataset.size, channels: 3, data: asPng8(optical!) }, "uint8")
        if (typeof encoded === "string") throw new Error(`synthetic conditioning (${condition.column}): ${encoded}`)
        return encoded
      }
      const wantsDatasetStatistics = sar && dataset.normalisation._tag === "mean-std" && dataset.normalisation.statistics === "dataset"
      // A first pass over the scenes, only when the declaration asks for dataset-wide statistics.
      const statistics = wantsDatasetStatistics
        ? yield* Effect.sync(() => {
          let moments = emptyMoments
          for (let index = 0; index < dataset.n; index++) {
            moments = combineMoments(moments, momentsOf(generateScene(dataset, index, { sar: true, optical: false }).sar!.amplitude))
          }
          return meanStdOf(moments)
        })
        : undefined
      // Chunks of one: a consumer that stops early never pays for scenes it does not take.
      return Stream.range(0, dataset.n - 1, 1).pipe(
        Stream.map((index): DatasetItem => {
          const scene = generateScene(dataset, index, { sar, optical: !sar || condition?.input === "optical" })
          const conditioning = conditionOf(scene.layout.labels, scene.optical)
          const { size } = dataset
          const grey = !sar && dataset.colour === "grey"
          const pixels = sar
            ? normalise(scene.sar!.amplitude, dataset.normalisation, statistics ? { datasetStatistics: statistics } : {})
            : grey
            ? greyUnitRange(scene.optical!)
            : unitRange(scene.optical!)
          const sample: TrainingSample = {
            id: scene.name,
            source: `synthetic:${dataset.seed}/${index}`,
            caption: applyCaptionTemplate(template, scene.description, options.token),
            width: size,
            height: size,
            channels: sar || grey ? 1 : 3,
            pixels: toTrainingRange(pixels),
            window: { x: 0, y: 0, size, flipHorizontal: false, flipVertical: false },
            ...(conditioning === undefined ? {} : { conditioning })
          }
          return { _tag: "Sample", sample }
        })
      )
    })
  )
