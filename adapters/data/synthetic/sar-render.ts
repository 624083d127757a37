import type { LookDirection } from "../../../framework/declaration/dataset.ts"
import type { SeededRandom } from "../seeded-random.ts"
import { BARE_FIELD, BRIDGES, CROPS, FOREST, ROADS, SHIPS, URBAN, WATER } from "./scene-classes.ts"
import type { SceneLayout } from "./scene-layout.ts"

/*
 * SAR amplitude from a scene layout (DESIGN §6):
 *  1. reflectivity X per pixel: per-class mean backscatter, per-region offset, texture
 *     (Gamma texture ⇒ K-distributed clutter; inverse-Gamma ⇒ G0, heavy tails for urban areas);
 *  2. side-looking geometry along each range line: a point at height h lands h·cot θ closer to the
 *     sensor (layover), ground within h·tan θ behind it is hidden (shadow), walls facing the sensor
 *     spread over the layover zone and add a double-bounce line at their base;
 *  3. speckle: I = M · Y with Y ~ Gamma(L, 1/L) for L looks; near strong point scatterers the
 *     field is summed coherently, look by look, with their sinc impulse responses;
 *  4. A = sqrt(I).
 * One pixel is 1 m on the ground.
 */

export interface SarRenderOptions {
  readonly looks: number
  readonly lookDirection: LookDirection
  /** Degrees from vertical. */
  readonly incidenceAngle: number
}

export interface SarRendering {
  readonly amplitude: Float32Array
  /** Mean intensity after geometry, before speckle (what the speckle multiplies). */
  readonly meanIntensity: Float32Array
  /** 1 where a point scatterer's impulse response was added coherently. */
  readonly pointTargetMask: Uint8Array
}

type Texture =
  | { readonly kind: "none" }
  /** K: Gamma(ν, 1/ν) texture; `cell` pixels share one draw (clumps of canopy). */
  | { readonly kind: "gamma"; readonly shape: number; readonly cell: number }
  /** G0: inverse-Gamma texture with mean 1, roughness α < -1 (closer to -1 = heavier tails). */
  | { readonly kind: "inverse-gamma"; readonly alpha: number }

interface ClassBackscatter {
  /** Mean σ0 in dB and the spread of per-region offsets around it. */
  readonly sigma0Db: number
  readonly spreadDb: number
  readonly texture: Texture
  /** σ0 (dB) of a wall facing the sensor, per metre of wall, and double-bounce gain per 10 m of wall. */
  readonly wallDb?: number
  readonly doubleBounce?: number
}

const NONE: Texture = { kind: "none" }

const backscatter: Record<number, ClassBackscatter> = {
  [WATER]: { sigma0Db: -22, spreadDb: 3, texture: NONE },
  [BARE_FIELD]: { sigma0Db: -13, spreadDb: 4, texture: NONE },
  [CROPS]: { sigma0Db: -9, spreadDb: 3, texture: { kind: "gamma", shape: 12, cell: 1 } },
  [FOREST]: { sigma0Db: -7.5, spreadDb: 1.5, texture: { kind: "gamma", shape: 4, cell: 3 }, wallDb: -8, doubleBounce: 0.5 },
  [URBAN]: { sigma0Db: -8, spreadDb: 3, texture: { kind: "inverse-gamma", alpha: -3 }, wallDb: -5, doubleBounce: 25 },
  [ROADS]: { sigma0Db: -19, spreadDb: 1.5, texture: NONE },
  [BRIDGES]: { sigma0Db: -5, spreadDb: 1, texture: NONE, doubleBounce: 30 },
  [SHIPS]: { sigma0Db: -1, spreadDb: 2, texture: { kind: "inverse-gamma", alpha: -2 }, wallDb: -2, doubleBounce: 40 }
}

/** Roofs are rougher than yards: heavier-tailed texture. */
const roof: ClassBackscatter = { sigma0Db: -6, spreadDb: 4, texture: { kind: "inverse-gamma", alpha: -1.8 } }

/** Noise-equivalent σ0: what shadows show. */
const NOISE_FLOOR = Math.pow(10, -28 / 10)
/** Impulse response width in pixels: images are oversampled 1.5×, so sinc sidelobes show. */
const RESOLUTION = 1.5
/** Half-width of the window in which a point scatterer's response is added (sidelobes ≈ -30 dB there). */
const POINT_WINDOW = 16

const dbToLinear = (db: number) => Math.pow(10, db / 10)

const textureDraw = (rng: SeededRandom, texture: Texture): number => {
  switch (texture.kind) {
    case "none":
      return 1
    case "gamma":
      return rng.gamma(texture.shape) / texture.shape
    case "inverse-gamma": {
      const a = -texture.alpha
      return (a - 1) / rng.gamma(a)
    }
  }
}

/** Mean intensity of each pixel before geometry, in image coordinates. */
const reflectivity = (layout: SceneLayout, rng: SeededRandom): Float32Array => {
  const { size, labels, heights, regions, regionInfo } = layout
  const regionLevel = regionInfo.map((region) => {
    const params = backscatter[region.label]!
    return dbToLinear(params.sigma0Db + (region.tone - 0.5) * params.spreadDb)
  })
  const forestCells = Math.ceil(size / 3)
  const forestTexture = new Float32Array(forestCells * forestCells)
  const forest = backscatter[FOREST]!.texture
  for (let i = 0; i < forestTexture.length; i++) forestTexture[i] = textureDraw(rng, forest)
  const out = new Float32Array(size * size)
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x
      const label = labels[i]!
      const region = regionInfo[regions[i]!]!
      let value = regionLevel[regions[i]!]!
      if (label === URBAN && heights[i]! > 0) {
        value = dbToLinear(roof.sigma0Db + (region.tone - 0.5) * roof.spreadDb) * textureDraw(rng, roof.texture)
      } else if (label === FOREST) {
        value *= forestTexture[Math.floor(y / 3) * forestCells + Math.floor(x / 3)]!
      } else {
        value *= textureDraw(rng, backscatter[label]!.texture)
        if (label === CROPS) {
          const along = x * Math.cos(region.rowAngle) + y * Math.sin(region.rowAngle)
          value *= 1 + 0.35 * Math.cos((2 * Math.PI * along) / region.rowPeriod)
        }
      }
      out[i] = value
    }
  }
  return out
}

/**
 * Maps canonical coordinates (u along range, away from the sensor; v along azimuth) to image
 * pixels. "right": the beam travels toward +x, so the sensor is on the left.
 */
const imageIndex = (direction: LookDirection, size: number) => {
  switch (direction) {
    case "right":
      return (u: number, v: number) => v * size + u
    case "left":
      return (u: number, v: number) => v * size + (size - 1 - u)
    case "down":
      return (u: number, v: number) => u * size + v
    case "up":
      return (u: number, v: number) => (size - 1 - u) * size + v
  }
}

const canonicalPoint = (direction: LookDirection, size: number, x: number, y: number): [number, number] => {
  switch (direction) {
    case "right":
      return [x, y]
    case "left":
      return [size - 1 - x, y]
    case "down":
      return [y, x]
    case "up":
      return [size - 1 - y, x]
  }
}

const sinc = (t: number) => (Math.abs(t) < 1e-9 ? 1 : Math.sin(Math.PI * t) / (Math.PI * t))

/** Adds `weight` at fractional position p of a range line, split linearly between neighbours. */
const splat = (line: Float64Array, p: number, weight: number) => {
  const lo = Math.floor(p)
  const f = p - lo
  if (lo >= 0 && lo < line.length) line[lo]! += weight * (1 - f)
  if (lo + 1 >= 0 && lo + 1 < line.length) line[lo + 1]! += weight * f
}

/** Spreads `perUnit` per pixel uniformly over [a, b] of a range line. */
const splatSegment = (line: Float64Array, a: number, b: number, perUnit: number) => {
  const steps = Math.max(1, Math.ceil((b - a) * 4))
  const step = (b - a) / steps
  for (let s = 0; s < steps; s++) splat(line, a + (s + 0.5) * step, perUnit * step)
}

export const renderSar = (layout: SceneLayout, options: SarRenderOptions, rng: SeededRandom): SarRendering => {
  const { size, labels, heights } = layout
  const x = reflectivity(layout, rng)
  const theta = (options.incidenceAngle * Math.PI) / 180
  const cot = 1 / Math.tan(theta)
  const index = imageIndex(options.lookDirection, size)
  const mean = new Float32Array(size * size)

  // Range lines continue past the far edge (edge pixels repeated) so that tall objects just
  // outside the scene lay over into it, as they would in a larger acquisition.
  let tallest = 0
  for (let i = 0; i < heights.length; i++) tallest = Math.max(tallest, heights[i]!)
  const span = size + Math.ceil(tallest * cot) + 2
  const line = new Float64Array(size)
  for (let v = 0; v < size; v++) {
    line.fill(0)
    // Height of the line of sight that grazes the tallest object so far: ground below it is in shadow.
    let horizon = -Infinity
    let previousHeight = 0
    let previousVisible = true
    let previousIndex = index(0, v)
    for (let u = 0; u < span; u++) {
      const i = index(Math.min(u, size - 1), v)
      const h = heights[i]!
      const shadowLine = horizon - cot
      const visible = h >= shadowLine - 1e-6
      horizon = Math.max(shadowLine, h)
      if (visible) splat(line, u - h * cot, x[i]!)
      const step = h - previousHeight
      if (u > 0 && step > 0.5) {
        const params = backscatter[labels[i]!]!
        // The part of the wall above the shadow line of nearer objects faces the sensor.
        const bottom = Math.max(previousHeight, shadowLine)
        if (params.wallDb !== undefined && bottom < h) {
          splatSegment(line, u - 0.5 - h * cot, u - 0.5 - bottom * cot, dbToLinear(params.wallDb) / cot)
        }
        if (params.doubleBounce !== undefined && previousVisible) {
          const base = x[previousIndex]!
          splat(line, u - 0.5 - previousHeight * cot, params.doubleBounce * (step / 10) * Math.max(base, dbToLinear(-15)))
        }
      }
      previousHeight = h
      previousVisible = visible
      previousIndex = i
    }
    for (let u = 0; u < size; u++) mean[index(u, v)] = line[u]! + NOISE_FLOOR
  }

  // Point scatterers in canonical coordinates, displaced by layover like everything else; their
  // deterministic field (separable sinc × sinc impulse response) is accumulated over a window.
  const fieldRe = new Float32Array(size * size)
  const fieldIm = new Float32Array(size * size)
  const mask = new Uint8Array(size * size)
  const weightsU = new Float64Array(2 * POINT_WINDOW + 2)
  const weightsV = new Float64Array(2 * POINT_WINDOW + 2)
  for (const target of layout.pointTargets) {
    const [cu, cv] = canonicalPoint(options.lookDirection, size, target.x, target.y)
    const tu = cu - target.height * cot
    const phase = rng.between(0, 2 * Math.PI)
    const amplitude = Math.sqrt(target.intensity)
    const u0 = Math.max(0, Math.ceil(tu - POINT_WINDOW))
    const u1 = Math.min(size - 1, Math.floor(tu + POINT_WINDOW))
    const v0 = Math.max(0, Math.ceil(cv - POINT_WINDOW))
    const v1 = Math.min(size - 1, Math.floor(cv + POINT_WINDOW))
    for (let u = u0; u <= u1; u++) weightsU[u - u0] = sinc((u - tu) / RESOLUTION)
    for (let v = v0; v <= v1; v++) weightsV[v - v0] = sinc((v - cv) / RESOLUTION)
    const re = amplitude * Math.cos(phase)
    const im = amplitude * Math.sin(phase)
    for (let v = v0; v <= v1; v++) {
      for (let u = u0; u <= u1; u++) {
        const i = index(u, v)
        const w = weightsU[u - u0]! * weightsV[v - v0]!
        fieldRe[i]! += re * w
        fieldIm[i]! += im * w
        mask[i] = 1
      }
    }
  }

  const looks = options.looks
  const intensity = new Float32Array(size * size)
  for (let i = 0; i < intensity.length; i++) {
    const m = mean[i]!
    if (mask[i] === 0) {
      intensity[i] = looks === 1 ? m * rng.exponential() : (m * rng.gamma(looks)) / looks
      continue
    }
    // Coherent sum, look by look, of the clutter's circular Gaussian field and the scatterers' field.
    const sigma = Math.sqrt(m / 2)
    let sum = 0
    for (let l = 0; l < looks; l++) {
      const re = sigma * rng.normal() + fieldRe[i]!
      const im = sigma * rng.normal() + fieldIm[i]!
      sum += re * re + im * im
    }
    intensity[i] = sum / looks
  }

  const amplitude = new Float32Array(size * size)
  for (let i = 0; i < amplitude.length; i++) amplitude[i] = Math.sqrt(intensity[i]!)
  return { amplitude, meanIntensity: mean, pointTargetMask: mask }
}
