import type { Resolution } from "../../framework/declaration/dataset.ts"
import { toTrainingRange } from "../../framework/sar/normalisation.ts"
import type { DatasetItem, SampleWindow, TrainingSample } from "../../framework/services/datasets.ts"
import type { Raster } from "../../framework/services/image-io.ts"
import { SeededRandom } from "./seeded-random.ts"

/*
 * Where training samples are cut from an image: one centre or random crop, or every full tile.
 * Random crops and flips draw from (dataset seed, file key), so a file's samples do not depend on
 * which other files exist or were skipped.
 */

export const planWindows = (
  width: number,
  height: number,
  resolution: Resolution,
  seed: number,
  fileKey: number
): Array<SampleWindow> => {
  const size = resolution.size
  if (width < size || height < size) return []
  const rng = new SeededRandom(seed, fileKey)
  const flips = () => ({
    flipHorizontal: (resolution.flip === "horizontal" || resolution.flip === "both") && rng.chance(0.5),
    flipVertical: (resolution.flip === "vertical" || resolution.flip === "both") && rng.chance(0.5)
  })
  switch (resolution.mode) {
    case "center-crop":
      return [{ x: Math.floor((width - size) / 2), y: Math.floor((height - size) / 2), size, ...flips() }]
    case "random-crop":
      return [{ x: rng.integer(0, width - size), y: rng.integer(0, height - size), size, ...flips() }]
    case "tile": {
      const stride = resolution.stride ?? size
      const windows: Array<SampleWindow> = []
      for (let y = 0; y + size <= height; y += stride) {
        for (let x = 0; x + size <= width; x += stride) windows.push({ x, y, size, ...flips() })
      }
      return windows
    }
  }
}

/** The window's pixels (HWC), flipped as the window says. */
export const cutWindow = (data: Float32Array, width: number, channels: number, window: SampleWindow): Float32Array => {
  const { size } = window
  const out = new Float32Array(size * size * channels)
  for (let row = 0; row < size; row++) {
    const sourceRow = window.y + (window.flipVertical ? size - 1 - row : row)
    for (let col = 0; col < size; col++) {
      const sourceCol = window.x + (window.flipHorizontal ? size - 1 - col : col)
      const from = (sourceRow * width + sourceCol) * channels
      const to = (row * size + col) * channels
      for (let c = 0; c < channels; c++) out[to + c] = data[from + c]!
    }
  }
  return out
}

/**
 * The training samples of one normalised image (`unit`, one band, in [0, 1]): each window cut, flipped
 * and mapped to [-1, 1], with its conditioning image (`conditions[w]` for window w, already cut and
 * encoded by the caller: label maps are one-hot per window). Tiles get `@x,y` after the id.
 */
export const windowSamples = (request: {
  readonly id: string
  readonly source: string
  readonly caption: string
  readonly unit: Float32Array
  readonly width: number
  readonly windows: ReadonlyArray<SampleWindow>
  readonly tiled: boolean
  readonly conditions?: ReadonlyArray<Raster> | undefined
}): Array<DatasetItem> =>
  request.windows.map((window, w): DatasetItem => {
    const conditioning = request.conditions?.[w]
    const sample: TrainingSample = {
      id: request.tiled ? `${request.id}@${window.x},${window.y}` : request.id,
      source: request.source,
      caption: request.caption,
      width: window.size,
      height: window.size,
      channels: 1,
      pixels: toTrainingRange(cutWindow(request.unit, request.width, 1, window)),
      window,
      ...(conditioning === undefined ? {} : { conditioning })
    }
    return { _tag: "Sample", sample }
  })
