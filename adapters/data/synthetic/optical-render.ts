import type { SeededRandom } from "../seeded-random.ts"
import { BARE_FIELD, BRIDGES, CROPS, FOREST, ROADS, SHIPS, URBAN, WATER } from "./scene-classes.ts"
import type { SceneLayout } from "./scene-layout.ts"
import { valueNoise } from "./value-noise.ts"

/*
 * An optical-like RGB rendering (0–255, interleaved) of the same layout: class colours varied per
 * region, crop rows, canopy shading from the canopy height, sun shadows cast toward the
 * bottom-right (sun in the north-west, 45° elevation) and a little sensor noise.
 */

type Rgb = readonly [number, number, number]

const mix = (a: Rgb, b: Rgb, t: number): Rgb => [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]

const palette: Record<number, readonly [Rgb, Rgb]> = {
  [WATER]: [[22, 48, 78], [38, 72, 104]],
  [BARE_FIELD]: [[128, 100, 74], [176, 148, 112]],
  [CROPS]: [[70, 118, 44], [172, 162, 84]],
  [FOREST]: [[26, 56, 28], [46, 84, 42]],
  [URBAN]: [[112, 110, 104], [138, 136, 128]],
  [ROADS]: [[78, 78, 82], [96, 96, 100]],
  [BRIDGES]: [[140, 140, 136], [166, 166, 160]],
  [SHIPS]: [[196, 198, 200], [236, 236, 232]]
}

const roofs: readonly [Rgb, Rgb] = [[156, 74, 58], [104, 108, 116]]

/** 1 where a taller object blocks the sun (north-west, 45° elevation). */
const sunShadow = (layout: SceneLayout): Uint8Array => {
  const { size, heights } = layout
  const shadow = new Uint8Array(size * size)
  const rise = Math.SQRT2 // metres of height per diagonal pixel step at 45° elevation
  let tallest = 0
  for (let i = 0; i < heights.length; i++) tallest = Math.max(tallest, heights[i]!)
  const reach = Math.ceil(tallest / rise)
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const h = heights[y * size + x]!
      for (let k = 1; k <= reach && k <= x && k <= y; k++) {
        if (heights[(y - k) * size + (x - k)]! - h > k * rise) {
          shadow[y * size + x] = 1
          break
        }
      }
    }
  }
  return shadow
}

export const renderOptical = (layout: SceneLayout, rng: SeededRandom): Float32Array => {
  const { size, labels, heights, regions, regionInfo } = layout
  const ripples = valueNoise(rng, size, 6)
  const soil = valueNoise(rng, size, 10)
  const shadow = sunShadow(layout)
  const out = new Float32Array(size * size * 3)
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x
      const label = labels[i]!
      const region = regionInfo[regions[i]!]!
      let colour: Rgb
      let shade = 1
      if (label === URBAN && heights[i]! > 0) {
        colour = region.tone < 0.5 ? roofs[0] : roofs[1]
        shade = 0.9 + 0.2 * region.tone
      } else {
        const [dark, light] = palette[label]!
        colour = mix(dark, light, region.tone)
        if (label === CROPS) {
          const along = x * Math.cos(region.rowAngle) + y * Math.sin(region.rowAngle)
          shade = 1 + 0.12 * Math.cos((2 * Math.PI * along) / region.rowPeriod)
        } else if (label === FOREST) shade = 0.7 + 0.6 * Math.min(1, Math.max(0, (heights[i]! - 10) / 10))
        else if (label === WATER) shade = 0.92 + 0.16 * ripples[i]!
        else if (label === BARE_FIELD) shade = 0.9 + 0.2 * soil[i]!
        else if (label === SHIPS && heights[i]! > 5) shade = 1.08
      }
      if (shadow[i] === 1) shade *= 0.55
      for (let c = 0; c < 3; c++) out[i * 3 + c] = colour[c]! * shade + rng.between(-4, 4)
    }
  }
  return out
}
