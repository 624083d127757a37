import { Effect } from "effect"
import { join } from "node:path"
import { classValues } from "../declaration/conditioning.ts"
import type { DistanceDomain } from "../metrics/amplitude-distances.ts"
import type { SampleImage } from "../metrics/metric-input.ts"
import { pairedAmplitudeDistances, type Spread, spreadOf } from "../metrics/paired-amplitude.ts"
import { classAmplitudeStatistics, type ClassComparison, classIndexOfOneHot, type ClassPair } from "../metrics/paired-class-statistics.ts"
import { layoutAgreement, layoutScales } from "../metrics/paired-layout.ts"
import type { GeneratedSample } from "../services/engine.ts"
import { type PreparedIndex, PreparedDataError, readPreparedCondition, readPreparedIndex, readPreparedPixels } from "./prepared-dataset.ts"

/**
 * The paired evaluation of a conditioned experiment (evaluation.json's `paired`): each generated image
 * against the true SAR image of the scene whose condition produced it (the prepared scenes of
 * generate.conditions) — per-pair amplitude distances and layout agreement with their spread over the
 * pairs, and, for label maps, amplitude statistics per class inside the map's regions, generated vs true.
 */

export interface PairedScore {
  /** The scene (its index in the prepared conditions) and the sample's seed. */
  readonly scene: number
  readonly id: string
  readonly seed: number
  readonly wasserstein: number
  readonly ks: number
  readonly layout: number
}

export interface PairedEvaluation {
  readonly pairs: ReadonlyArray<PairedScore>
  readonly wasserstein: Spread
  readonly ks: Spread
  /** Layout agreement (paired-layout.ts): the mean over its block scales of the correlation of log block means. */
  readonly layout: Spread
  /** Label-map conditions: per class, generated vs true amplitude statistics over every pair. */
  readonly classes?: ReadonlyArray<ClassComparison>
}

/** Prepared pixels are HWC in [-1, 1]; metrics take one band of amplitude: the channel mean, back in [0, 1]. */
export const amplitudeOfPrepared = (index: Pick<PreparedIndex, "channels" | "width" | "height">, pixels: Float32Array, name: string): SampleImage => {
  const { channels, width, height } = index
  const data = new Float32Array(width * height)
  for (let p = 0; p < data.length; p++) {
    let sum = 0
    for (let c = 0; c < channels; c++) sum += pixels[p * channels + c]!
    data[p] = (sum / channels + 1) / 2
  }
  return { name, width, height, data }
}

/** Pairs `generated[i]` (the image of `samples[i]`) with the true image of its scene in `conditionsDir`. */
export const pairedEvaluation = (
  samples: ReadonlyArray<GeneratedSample>,
  generated: ReadonlyArray<SampleImage>,
  conditionsDir: string,
  options: { readonly domain: DistanceDomain; readonly bins: number; readonly klPseudoCount: number }
) =>
  Effect.gen(function*() {
    if (generated.length !== samples.length) return yield* Effect.die(new Error(`${generated.length} images for ${samples.length} samples`))
    const scenes = yield* readPreparedIndex(conditionsDir)
    const conditioning = scenes.conditioning
    const truths = new Map<number, { image: SampleImage; classes?: Int32Array }>()
    const truthOf = (scene: number) =>
      Effect.gen(function*() {
        const known = truths.get(scene)
        if (known !== undefined) return known
        const sample = scenes.samples[scene]
        if (sample === undefined) {
          return yield* new PreparedDataError({ path: join(conditionsDir, "index.json"), reason: `has no scene ${scene}, which a generated sample names` })
        }
        const image = amplitudeOfPrepared(scenes, yield* readPreparedPixels(conditionsDir, sample), sample.source)
        const classes = conditioning?.classes === undefined
          ? undefined
          : classIndexOfOneHot(yield* readPreparedCondition(conditionsDir, sample), conditioning.channels)
        const truth = { image, ...(classes === undefined ? {} : { classes }) }
        truths.set(scene, truth)
        return truth
      })
    const pairs: Array<PairedScore> = []
    const classPairs: Array<ClassPair> = []
    for (const [i, sample] of samples.entries()) {
      const condition = sample.condition
      if (condition === undefined) continue
      const truth = yield* truthOf(condition.scene)
      // The lengths are checked above.
      const image = generated[i]!
      const distances = yield* pairedAmplitudeDistances(image, truth.image, options.domain, options.bins, options.klPseudoCount)
      const layout = layoutAgreement(image, truth.image, layoutScales(image.width, image.height))
      pairs.push({ scene: condition.scene, id: condition.id, seed: sample.seed, ...distances, layout: layout.score })
      if (truth.classes !== undefined) classPairs.push({ generated: image.data, truth: truth.image.data, classes: truth.classes })
    }
    const declared = conditioning?.classes
    const classes = declared === undefined ? undefined : classAmplitudeStatistics(
      classPairs,
      classValues(declared).map((value) => ({ value, name: declared[String(value)]! }))
    )
    return {
      pairs,
      wasserstein: spreadOf(pairs.map((p) => p.wasserstein)),
      ks: spreadOf(pairs.map((p) => p.ks)),
      layout: spreadOf(pairs.map((p) => p.layout)),
      ...(classes === undefined ? {} : { classes })
    } satisfies PairedEvaluation
  })
