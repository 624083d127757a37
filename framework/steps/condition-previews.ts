import type { PreparedConditioning } from "./prepared-dataset.ts"
import type { Raster } from "../services/image-io.ts"

/**
 * How the report shows a scene's condition: a label map (one-hot, one channel per class) painted with
 * one colour per class, an optical or SAR condition as the image itself. The palette is a qualitative
 * one (Tableau 10) indexed by class position, so it separates neighbouring classes; the legend travels
 * in evaluation.json with the previews, so the report never guesses which colour is which class.
 */

const palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

/** A class of the label maps and its colour in the condition previews. */
export interface LegendEntry {
  readonly name: string
  readonly colour: string
}

/** Colour of class position k (cycling past the palette's ten). */
const colourOf = (k: number) => palette[k % palette.length]!

const rgbOf = (hex: string): readonly [number, number, number] =>
  [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as unknown as readonly [number, number, number]

/** The legend of a label-map conditioning (class positions in ascending label value, as the channels are), else none. */
export const conditionLegend = (conditioning: Pick<PreparedConditioning, "classes">, values: ReadonlyArray<number>): ReadonlyArray<LegendEntry> | undefined =>
  conditioning.classes === undefined ? undefined : values.map((value, k) => ({ name: conditioning.classes![String(value)]!, colour: colourOf(k) }))

/**
 * An 8-bit preview of a prepared condition (HWC in [0, 1]): label maps painted (black where no channel is
 * set), one or three channels as grey or colour, other channel counts as their mean.
 */
export const conditionPreview = (
  condition: Float32Array,
  size: { readonly width: number; readonly height: number; readonly channels: number },
  labelMap: boolean
): Raster => {
  const { channels, height, width } = size
  const pixels = width * height
  if (labelMap) {
    const data = new Float32Array(pixels * 3)
    const colours = Array.from({ length: channels }, (_, k) => rgbOf(colourOf(k)))
    for (let p = 0; p < pixels; p++) {
      for (let k = 0; k < channels; k++) {
        if (condition[p * channels + k] === 1) {
          data.set(colours[k]!, p * 3)
          break
        }
      }
    }
    return { width, height, channels: 3, data }
  }
  if (channels === 1 || channels === 3) return { width, height, channels, data: condition.map((v) => Math.min(1, Math.max(0, v)) * 255) }
  const data = new Float32Array(pixels)
  for (let p = 0; p < pixels; p++) {
    let sum = 0
    for (let k = 0; k < channels; k++) sum += condition[p * channels + k]!
    data[p] = Math.min(1, Math.max(0, sum / channels)) * 255
  }
  return { width, height, channels: 1, data }
}
