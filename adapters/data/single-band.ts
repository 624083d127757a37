import type { Raster } from "../../framework/services/image-io.ts"

/**
 * The one band a SAR sample uses: the declared band, the file's only band, or the colour bands
 * of a grey image stored as RGB (all equal; alpha ignored). Otherwise the declaration must say.
 */
export const singleBand = (raster: Raster, band: number | undefined): Float32Array | string => {
  const { channels, data, width, height } = raster
  if (band !== undefined) {
    if (band >= channels) return `band ${band} requested but the file has ${channels} band${channels === 1 ? "" : "s"} (numbered from 0)`
    if (channels === 1) return data
  } else if (channels === 1) return data
  const pick = band ?? 0
  const colours = band !== undefined ? 1 : channels === 2 ? 1 : Math.min(channels, 3)
  const out = new Float32Array(width * height)
  for (let p = 0; p < out.length; p++) {
    const v = data[p * channels + pick]!
    for (let c = 1; c < colours; c++) {
      if (data[p * channels + c] !== v) {
        return `has ${channels} bands whose values differ (at row ${Math.floor(p / width)}, column ${p % width}); declare which band to use`
      }
    }
    out[p] = v
  }
  return out
}
