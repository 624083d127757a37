import type { Raster } from "../services/image-io.ts"

/*
 * Conditioning images as a ControlNet reads them: HWC float32 in [0, 1], as diffusers' control image
 * processor gives them (no [-1, 1] mapping). Label maps become one channel per class; optical images
 * keep grey or RGB, scaled by their integer type's maximum. A problem is returned as its description,
 * for the caller to name the file.
 */

/** One channel per class, in `values` order, 1 where the pixel holds that class's value. */
export const oneHot = (labels: Float32Array, width: number, values: ReadonlyArray<number>): Raster | string => {
  const channel = new Map(values.map((v, k) => [v, k]))
  const classes = values.length
  const data = new Float32Array(labels.length * classes)
  for (let p = 0; p < labels.length; p++) {
    const k = channel.get(labels[p]!)
    if (k === undefined) {
      return `label value ${labels[p]} at row ${Math.floor(p / width)}, column ${p % width} is not one of the declared classes (${values.join(", ")})`
    }
    data[p * classes + k] = 1
  }
  return { width, height: labels.length / width, channels: classes, data }
}

/** The largest value of an integer sample type; floats are taken as they are. */
const typeMaximum = (sampleType: string): number | undefined => {
  const bits = /^uint(8|16|32)$/.exec(sampleType)
  return bits === null ? undefined : 2 ** Number(bits[1]) - 1
}

/**
 * An optical image for a ControlNet: grey or RGB (an alpha band is dropped), integers divided by their
 * type's maximum (8-bit: 255), floats kept; every value must then lie in [0, 1].
 */
export const opticalCondition = (raster: Raster, sampleType: string): Raster | string => {
  const { width, height, channels: stored, data } = raster
  const channels = stored === 1 || stored === 2 ? 1 : stored === 3 || stored === 4 ? 3 : undefined
  if (channels === undefined) return `has ${stored} bands; an optical conditioning image is grey or RGB (with or without alpha)`
  const scale = typeMaximum(sampleType) ?? 1
  const out = new Float32Array(width * height * channels)
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < channels; c++) {
      const v = data[p * stored + c]! / scale
      if (!(v >= 0 && v <= 1)) {
        return `value ${data[p * stored + c]} at row ${Math.floor(p / width)}, column ${
          p % width
        } is outside [0, 1] after scaling a ${sampleType} image by 1/${scale}`
      }
      out[p * channels + c] = v
    }
  }
  return { width, height, channels, data: out }
}
