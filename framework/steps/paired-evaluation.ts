import { Effect } from "effect"
import { join } from "node:path"
import { classValues } from "../declaration/conditioning.ts"
import type { DistanceDomain } from "../metrics/amplitude-distances.ts"
import type { EstimateInterval, UncertaintySettings } from "../metrics/evaluation-intervals.ts"
import type { SampleImage } from "../metrics/metric-input.ts"
import { pairedAmplitudeDistances, type Spread, spreadOf } from "../metrics/paired-amplitude.ts"
import { classAmplitudeStatistics, type ClassComparison, classIndexOfOneHot, type ClassPair } from "../metrics/paired-class-statistics.ts"
import { pairedMeanIntervals, pairUnits } from "../metrics/paired-intervals.ts"
import { layoutAgreement, layoutScales } from "../metrics/paired-layout.ts"
import type { GeneratedSample } from "../services/engine.ts"
import { ImageIO } from "../services/image-io.ts"
import { conditionLegend, conditionPreview, type LegendEntry } from "./condition-previews.ts"
import { type PreparedIndex, PreparedDataError, readPreparedCondition, readPreparedIndex, readPreparedPixels } from "./prepared-dataset.ts"

/**
 * The paired evaluation of a conditioned experiment (evaluation.json's `paired`): each generated image
 * against the true SAR image of the scene whose condition produced it (the prepared scenes of
 * generate.conditions) — per-pair amplitude distances and layout agreement with their spread over the
 * pairs, and, for label maps, amplitude statistics per class inside the map's regions, generated vs true.
 * The shuffled level: each sample's layout agreement with the truths of the other scenes (their mean) —
 * what a generator that ignores its condition scores; a sample made from scene j's condition and judged
 * against scene i's truth is a sample generated on a shuffled condition (its prompt, scene j's caption, moves
 * with the condition: a caption names classes, not where they lie). The mean over every other scene, not one
 * partner, because one partner's truth adds its own layout's chance agreement to each pair.
 * The layout gain: each pair's own-scene agreement minus its shuffled level. It is the paired comparison —
 * the same sample judged against two truths — so the noise of the sample itself cancels, and its interval is
 * far narrower than those of the two levels apart; an interval above 0 says the samples follow their condition.
 * Means over the pairs have intervals as every other estimate (paired-intervals.ts); the scenes' previews
 * (condition, true SAR) are written for the report's conditioned rows.
 */

export interface PairedScore {
  /** The scene (its index in the prepared conditions) and the sample's seed. */
  readonly scene: number
  readonly id: string
  readonly seed: number
  readonly wasserstein: number
  readonly ks: number
  readonly layout: number
  /** Mean layout agreement with the truths of the other scenes (absent with a single scene). */
  readonly shuffledLayout?: number
  /** `layout` − `shuffledLayout` (absent with a single scene). */
  readonly layoutGain?: number
  /** The sample's preview, relative to the evaluation folder. */
  readonly preview: string
}

/** A scene of the conditions that some sample was made from: its previews, relative to the evaluation folder. */
export interface PairedScene {
  readonly scene: number
  readonly id: string
  /** The condition as the model saw it (a label map painted with `legend`'s colours). */
  readonly condition: string
  /** The scene's true SAR image. */
  readonly truth: string
}

/** The paired metrics whose mean over the pairs has an interval. */
export type PairedMetric = "wasserstein" | "ks" | "layout" | "shuffledLayout" | "layoutGain"

export interface PairedEvaluation {
  readonly pairs: ReadonlyArray<PairedScore>
  readonly scenes: ReadonlyArray<PairedScene>
  /** Label-map conditions: each class's colour in the condition previews. */
  readonly legend?: ReadonlyArray<LegendEntry>
  readonly wasserstein: Spread
  readonly ks: Spread
  /** Layout agreement (paired-layout.ts): the mean over its block scales of the correlation of log block means. */
  readonly layout: Spread
  /** Mean layout agreement with the other scenes' truths (absent with a single scene). */
  readonly shuffledLayout?: Spread
  /** Own-scene minus shuffled layout agreement, pair by pair (absent with a single scene). */
  readonly layoutGain?: Spread
  /** Mean over the pairs of each metric, with its interval (bootstrap over noise draws, BCa). */
  readonly intervals: Readonly<Partial<Record<PairedMetric, EstimateInterval>>>
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

export interface PairedEvaluationOptions {
  readonly domain: DistanceDomain
  readonly bins: number
  readonly klPseudoCount: number
  readonly uncertainty: UncertaintySettings
  /** The evaluation folder, where previews/ gets the scenes' previews, and each sample's preview in it (`samples` order). */
  readonly previews: { readonly dir: string; readonly generated: ReadonlyArray<string> }
}

/** Pairs `generated[i]` (the image of `samples[i]`) with the true image of its scene in `conditionsDir`. */
export const pairedEvaluation = (
  samples: ReadonlyArray<GeneratedSample>,
  generated: ReadonlyArray<SampleImage>,
  conditionsDir: string,
  options: PairedEvaluationOptions
) =>
  Effect.gen(function*() {
    if (generated.length !== samples.length || options.previews.generated.length !== samples.length) {
      return yield* Effect.die(new Error(`${generated.length} images and ${options.previews.generated.length} previews for ${samples.length} samples`))
    }
    const io = yield* ImageIO
    const scenes = yield* readPreparedIndex(conditionsDir)
    const conditioning = scenes.conditioning
    const truths = new Map<number, { image: SampleImage; classes?: Int32Array; scene: PairedScene }>()
    const truthOf = (scene: number) =>
      Effect.gen(function*() {
        const known = truths.get(scene)
        if (known !== undefined) return known
        const sample = scenes.samples[scene]
        if (sample === undefined) {
          return yield* new PreparedDataError({ path: join(conditionsDir, "index.json"), reason: `has no scene ${scene}, which a generated sample names` })
        }
        const image = amplitudeOfPrepared(scenes, yield* readPreparedPixels(conditionsDir, sample), sample.source)
        const condition = conditioning === undefined ? undefined : yield* readPreparedCondition(conditionsDir, sample)
        const classes = conditioning?.classes === undefined ? undefined : classIndexOfOneHot(condition!, conditioning.channels)
        const stem = `previews/scene-${String(scene).padStart(4, "0")}`
        const written: PairedScene = { scene, id: sample.id, condition: `${stem}-condition.png`, truth: `${stem}-truth.png` }
        yield* io.writePng8(join(options.previews.dir, written.truth), { ...image, channels: 1, data: image.data.map((v) => v * 255) })
        if (condition !== undefined) {
          const size = { width: scenes.width, height: scenes.height, channels: conditioning!.channels }
          yield* io.writePng8(join(options.previews.dir, written.condition), conditionPreview(condition, size, classes !== undefined))
        }
        const truth = { image, scene: written, ...(classes === undefined ? {} : { classes }) }
        truths.set(scene, truth)
        return truth
      })
    const conditioned = [...samples.entries()].flatMap(([i, sample]) => (sample.condition === undefined ? [] : [{ i, sample, condition: sample.condition }]))
    const sceneOrder = [...new Set(conditioned.map((c) => c.condition.scene))].sort((a, b) => a - b)
    const pairs: Array<PairedScore> = []
    const classPairs: Array<ClassPair> = []
    for (const { condition, i, sample } of conditioned) {
      const truth = yield* truthOf(condition.scene)
      // The lengths are checked above.
      const image = generated[i]!
      const scales = layoutScales(image.width, image.height)
      const distances = yield* pairedAmplitudeDistances(image, truth.image, options.domain, options.bins, options.klPseudoCount)
      const layout = layoutAgreement(image, truth.image, scales)
      let shuffled = 0
      for (const other of sceneOrder) {
        if (other !== condition.scene) shuffled += layoutAgreement(image, (yield* truthOf(other)).image, scales).score / (sceneOrder.length - 1)
      }
      pairs.push({
        scene: condition.scene,
        id: condition.id,
        seed: sample.seed,
        ...distances,
        layout: layout.score,
        ...(sceneOrder.length < 2 ? {} : { shuffledLayout: shuffled, layoutGain: layout.score - shuffled }),
        preview: options.previews.generated[i]!
      })
      if (truth.classes !== undefined) classPairs.push({ generated: image.data, truth: truth.image.data, classes: truth.classes })
    }
    const declared = conditioning?.classes
    const values = declared === undefined ? [] : classValues(declared)
    const classes = declared === undefined
      ? undefined
      : classAmplitudeStatistics(classPairs, values.map((value) => ({ value, name: declared[String(value)]! })))
    const legend = conditioning === undefined ? undefined : conditionLegend(conditioning, values)
    const shuffledLayout = sceneOrder.length < 2 ? undefined : pairs.map((p) => p.shuffledLayout!)
    const layoutGain = sceneOrder.length < 2 ? undefined : pairs.map((p) => p.layoutGain!)
    const intervals = pairedMeanIntervals(
      pairUnits(pairs),
      {
        wasserstein: pairs.map((p) => p.wasserstein),
        ks: pairs.map((p) => p.ks),
        layout: pairs.map((p) => p.layout),
        ...(shuffledLayout === undefined ? {} : { shuffledLayout }),
        ...(layoutGain === undefined ? {} : { layoutGain })
      },
      options.uncertainty,
      "paired"
    )
    return {
      pairs,
      scenes: sceneOrder.map((scene) => truths.get(scene)!.scene),
      ...(legend === undefined ? {} : { legend }),
      wasserstein: spreadOf(pairs.map((p) => p.wasserstein)),
      ks: spreadOf(pairs.map((p) => p.ks)),
      layout: spreadOf(pairs.map((p) => p.layout)),
      ...(shuffledLayout === undefined ? {} : { shuffledLayout: spreadOf(shuffledLayout) }),
      ...(layoutGain === undefined ? {} : { layoutGain: spreadOf(layoutGain) }),
      intervals,
      ...(classes === undefined ? {} : { classes })
    } satisfies PairedEvaluation
  })
