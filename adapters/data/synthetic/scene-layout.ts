import type { SceneClass } from "../../../framework/declaration/dataset.ts"
import type { SeededRandom } from "../seeded-random.ts"
import { BARE_FIELD, BRIDGES, CROPS, FOREST, ROADS, SHIPS, URBAN, WATER } from "./scene-classes.ts"
import { valueNoise } from "./value-noise.ts"

/*
 * The scene layout: a label map, heights above ground (metres; one pixel is 1 m on the ground),
 * regions that share one reflectivity draw (a field parcel, a building, a ship), and strong point
 * scatterers. Both renderers (SAR and optical) and the caption read only this.
 */

export type SceneKind = "harbour" | "river" | "lake" | "coast" | "open-water" | "farmland" | "town" | "woodland"

export interface Region {
  readonly label: number
  /** A per-region draw in [0, 1): moisture of a field, roof material of a building… */
  readonly tone: number
  /** Direction (radians) and period (pixels) of crop rows. */
  readonly rowAngle: number
  readonly rowPeriod: number
}

export interface PointTarget {
  readonly x: number
  readonly y: number
  /** Height above ground in metres (the scatterer is displaced by layover like everything else). */
  readonly height: number
  /** Peak intensity, linear. */
  readonly intensity: number
}

export interface SceneLayout {
  readonly size: number
  readonly kind: SceneKind
  readonly labels: Uint8Array
  readonly heights: Float32Array
  readonly regions: Uint32Array
  readonly regionInfo: ReadonlyArray<Region>
  readonly pointTargets: ReadonlyArray<PointTarget>
  readonly counts: { readonly ships: number; readonly bridges: number; readonly roads: number; readonly buildings: number }
}

interface Allowed {
  readonly water: boolean
  readonly urban: boolean
  readonly roads: boolean
  readonly bridges: boolean
  readonly ships: boolean
  /** Classes that may cover open land, in the order bare field, crops, forest. */
  readonly landFill: ReadonlyArray<number>
}

const allowedClasses = (exclude: ReadonlySet<SceneClass>): Allowed => {
  const water = !exclude.has("water")
  return {
    water,
    urban: !exclude.has("urban"),
    roads: !exclude.has("roads"),
    // Bridges and ships exist only over water.
    bridges: water && !exclude.has("bridges"),
    ships: water && !exclude.has("ships"),
    landFill: [
      ...(exclude.has("bare-field") ? [] : [BARE_FIELD]),
      ...(exclude.has("crops") ? [] : [CROPS]),
      ...(exclude.has("forest") ? [] : [FOREST])
    ]
  }
}

const chooseKind = (rng: SeededRandom, allowed: Allowed): SceneKind => {
  const land = allowed.landFill.length > 0 || allowed.urban
  if (allowed.water && !land) return "open-water"
  const options: Array<[SceneKind, number]> = [
    ["harbour", allowed.water && allowed.urban ? 2 : 0],
    ["river", allowed.water ? 2 : 0],
    ["lake", allowed.water ? 1 : 0],
    ["coast", allowed.water ? 1 : 0],
    ["farmland", allowed.landFill.includes(BARE_FIELD) || allowed.landFill.includes(CROPS) ? 2 : 0],
    ["town", allowed.urban ? 1.5 : 0],
    ["woodland", allowed.landFill.includes(FOREST) ? 1 : 0]
  ]
  return options[rng.weighted(options.map(([, w]) => w))]![0]
}

/** Land-cover mix per kind, as weights for bare field, crops, forest. */
const landWeights: Record<SceneKind, [number, number, number]> = {
  harbour: [0.4, 0.3, 0.3],
  river: [0.35, 0.35, 0.3],
  lake: [0.3, 0.3, 0.4],
  coast: [0.4, 0.35, 0.25],
  "open-water": [1, 1, 1],
  farmland: [0.35, 0.5, 0.15],
  town: [0.35, 0.2, 0.45],
  woodland: [0.1, 0.15, 0.75]
}

class LayoutCanvas {
  readonly labels: Uint8Array
  readonly heights: Float32Array
  readonly regions: Uint32Array
  readonly regionInfo: Array<Region> = []
  readonly pointTargets: Array<PointTarget> = []
  /** Water a road may cross on a bridge (rivers, canals), as opposed to sea and lakes. */
  readonly bridgeable: Uint8Array

  constructor(readonly size: number, readonly rng: SeededRandom) {
    this.labels = new Uint8Array(size * size)
    this.heights = new Float32Array(size * size)
    this.regions = new Uint32Array(size * size)
    this.bridgeable = new Uint8Array(size * size)
  }

  region(label: number): number {
    this.regionInfo.push({
      label,
      tone: this.rng.uniform(),
      rowAngle: this.rng.between(0, Math.PI),
      rowPeriod: this.rng.between(4, 8)
    })
    return this.regionInfo.length - 1
  }

  set(i: number, label: number, region: number, height = 0) {
    this.labels[i] = label
    this.regions[i] = region
    this.heights[i] = height
  }

  isLand(i: number) {
    const l = this.labels[i]
    return l === BARE_FIELD || l === CROPS || l === FOREST
  }
}

// ---------------------------------------------------------------------------------------------
// Land parcels: a jittered Voronoi partition, each cell one field / crop / forest parcel.

const paintParcels = (canvas: LayoutCanvas, kind: SceneKind, allowed: Allowed) => {
  const { size, rng } = canvas
  const fill = allowed.landFill.length > 0 ? allowed.landFill : [URBAN]
  const base = landWeights[kind]
  const weights = fill.map((label) => (label === BARE_FIELD ? base[0] : label === CROPS ? base[1] : label === FOREST ? base[2] : 1))
  const count = Math.max(3, Math.round((size * size) / (72 * 72)) + rng.integer(1, 4))
  const seeds = Array.from({ length: count }, () => ({
    x: rng.between(0, size),
    y: rng.between(0, size),
    region: canvas.region(fill[rng.weighted(weights)]!)
  }))
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let best = 0
      let bestDistance = Infinity
      for (let s = 0; s < seeds.length; s++) {
        const dx = x - seeds[s]!.x
        const dy = y - seeds[s]!.y
        const d = dx * dx + dy * dy
        if (d < bestDistance) {
          bestDistance = d
          best = s
        }
      }
      const region = seeds[best]!.region
      canvas.set(y * size + x, canvas.regionInfo[region]!.label, region)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Water bodies.

type Side = 0 | 1 | 2 | 3

/** Distance from the chosen image edge, and position along it. */
const edgeFrame = (side: Side, size: number, x: number, y: number): [number, number] =>
  side === 0 ? [y, x] : side === 1 ? [size - 1 - x, y] : side === 2 ? [size - 1 - y, x] : [x, y]

interface Coast {
  readonly side: Side
  readonly shore: (t: number) => number
  readonly region: number
}

const paintCoast = (canvas: LayoutCanvas, straight: boolean): Coast => {
  const { size, rng } = canvas
  const side = rng.integer(0, 3) as Side
  const d0 = rng.between(0.25, 0.45) * size
  const waves = Array.from({ length: 3 }, (_, k) => ({
    amplitude: (straight ? 0.01 : 0.05) * size * rng.uniform() / (k + 1),
    frequency: (k + 1) * rng.between(0.6, 1.6),
    phase: rng.between(0, 2 * Math.PI)
  }))
  const shore = (t: number) => d0 + waves.reduce((s, w) => s + w.amplitude * Math.sin((2 * Math.PI * w.frequency * t) / size + w.phase), 0)
  const region = canvas.region(WATER)
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const [d, t] = edgeFrame(side, size, x, y)
      if (d < shore(t)) canvas.set(y * size + x, WATER, region)
    }
  }
  return { side, shore, region }
}

/** A narrow canal from the sea inland; roads cross it on bridges. */
const paintCanal = (canvas: LayoutCanvas, coast: Coast) => {
  const { size, rng } = canvas
  const t0 = rng.between(0.3, 0.7) * size
  const width = rng.between(8, 14)
  const depth = coast.shore(t0) + rng.between(0.3, 0.5) * size
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const [d, t] = edgeFrame(coast.side, size, x, y)
      if (Math.abs(t - t0) < width / 2 && d < depth) {
        const i = y * size + x
        if (canvas.labels[i] !== WATER) {
          canvas.set(i, WATER, coast.region)
          canvas.bridgeable[i] = 1
        }
      }
    }
  }
}

interface River {
  readonly horizontal: boolean
  readonly centre: (along: number) => number
}

const paintRiver = (canvas: LayoutCanvas): River => {
  const { size, rng } = canvas
  const horizontal = rng.chance(0.5)
  const c0 = rng.between(0.35, 0.65) * size
  const amplitude = rng.between(0.03, 0.12) * size
  const period = rng.between(0.8, 2) * size
  const phase = rng.between(0, 2 * Math.PI)
  const width = rng.between(0.1, 0.18) * size
  const centre = (along: number) => c0 + amplitude * Math.sin((2 * Math.PI * along) / period + phase)
  const region = canvas.region(WATER)
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const [along, across] = horizontal ? [x, y] : [y, x]
      if (Math.abs(across - centre(along)) < width / 2) {
        canvas.set(y * size + x, WATER, region)
        canvas.bridgeable[y * size + x] = 1
      }
    }
  }
  return { horizontal, centre }
}

const paintLake = (canvas: LayoutCanvas) => {
  const { size, rng } = canvas
  const cx = rng.between(0.35, 0.65) * size
  const cy = rng.between(0.35, 0.65) * size
  const radius = rng.between(0.22, 0.36) * size
  const harmonics = [2, 3, 5].map((k) => ({ k, a: rng.between(0, 0.25 / k * 2), phase: rng.between(0, 2 * Math.PI) }))
  const region = canvas.region(WATER)
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const angle = Math.atan2(y - cy, x - cx)
      const r = radius * (1 + harmonics.reduce((s, h) => s + h.a * Math.sin(h.k * angle + h.phase), 0))
      if (Math.hypot(x - cx, y - cy) < r) canvas.set(y * size + x, WATER, region)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Urban blocks: a street grid, a building (or two) per block, corner reflectors at some walls.

const paintUrban = (canvas: LayoutCanvas, inZone: (x: number, y: number) => boolean, allowed: Allowed): number => {
  const { size, rng } = canvas
  const angle = rng.chance(0.5) ? 0 : rng.between(-0.3, 0.3)
  const cos = Math.cos(angle)
  const sin = Math.sin(angle)
  const street = rng.integer(4, 6)
  const block = rng.integer(22, 38)
  const pitch = block + street
  const offsetU = rng.between(0, pitch)
  const offsetV = rng.between(0, pitch)
  const streetRegion = canvas.region(allowed.roads ? ROADS : URBAN)
  interface Building {
    region: number
    u0: number
    u1: number
    v0: number
    v1: number
    height: number
  }
  const blocks = new Map<string, { yard: number; buildings: Array<Building> }>()
  const blockAt = (bu: number, bv: number) => {
    const key = `${bu},${bv}`
    let entry = blocks.get(key)
    if (entry === undefined) {
      const inset = rng.integer(2, 4)
      const buildings: Array<Building> = []
      if (!rng.chance(0.12)) {
        const split = rng.chance(0.35)
        const spans: Array<[number, number]> = split
          ? [[inset, block / 2 - 1], [block / 2 + 1, block - inset]]
          : [[inset, block - inset]]
        for (const [u0, u1] of spans) {
          buildings.push({ region: canvas.region(URBAN), u0, u1, v0: inset, v1: block - inset, height: rng.between(6, 20) })
        }
      }
      entry = { yard: canvas.region(URBAN), buildings }
      blocks.set(key, entry)
    }
    return entry
  }
  let painted = 0
  const used = new Set<Building>()
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x
      if (!canvas.isLand(i) || !inZone(x, y)) continue
      const u = x * cos + y * sin - offsetU
      const v = -x * sin + y * cos - offsetV
      const bu = Math.floor(u / pitch)
      const bv = Math.floor(v / pitch)
      const fu = u - bu * pitch
      const fv = v - bv * pitch
      if (fu < street || fv < street) {
        canvas.set(i, allowed.roads ? ROADS : URBAN, streetRegion)
        continue
      }
      const { yard, buildings } = blockAt(bu, bv)
      const bx = fu - street
      const by = fv - street
      const building = buildings.find((b) => bx >= b.u0 && bx < b.u1 && by >= b.v0 && by < b.v1)
      if (building) {
        canvas.set(i, URBAN, building.region, building.height)
        if (!used.has(building)) {
          used.add(building)
          painted++
          // A dihedral/trihedral at a random base corner of the wall: a strong point scatterer.
          if (rng.chance(0.5)) {
            const cu = (rng.chance(0.5) ? building.u0 : building.u1) + street + bu * pitch + offsetU
            const cv = (rng.chance(0.5) ? building.v0 : building.v1) + street + bv * pitch + offsetV
            canvas.pointTargets.push({
              x: cu * cos - cv * sin,
              y: cu * sin + cv * cos,
              height: 0,
              intensity: Math.pow(10, rng.between(0.8, 1.6))
            })
          }
        }
      } else canvas.set(i, URBAN, yard)
    }
  }
  return painted
}

// ---------------------------------------------------------------------------------------------
// Roads (quadratic curves from edge to edge) and the bridges where they cross rivers or canals.

const edgePoint = (rng: SeededRandom, size: number, side: Side): [number, number] => {
  const t = rng.between(0.1, 0.9) * size
  return side === 0 ? [t, -2] : side === 1 ? [size + 1, t] : side === 2 ? [t, size + 1] : [-2, t]
}

const paintRoad = (
  canvas: LayoutCanvas,
  from: [number, number],
  to: [number, number],
  allowed: Allowed,
  roadRegion: number,
  bridgeRegion: () => number
): boolean => {
  const { size, rng } = canvas
  const width = rng.between(3, 5)
  const mid: [number, number] = [
    (from[0] + to[0]) / 2 + rng.between(-0.15, 0.15) * size,
    (from[1] + to[1]) / 2 + rng.between(-0.15, 0.15) * size
  ]
  const length = Math.hypot(to[0] - from[0], to[1] - from[1])
  const steps = Math.ceil(length * 2)
  const deckHeight = rng.between(6, 11)
  let bridged = false
  const radius = width / 2
  const bridgeRadius = radius + 1
  for (let s = 0; s <= steps; s++) {
    const t = s / steps
    const px = (1 - t) * (1 - t) * from[0] + 2 * (1 - t) * t * mid[0] + t * t * to[0]
    const py = (1 - t) * (1 - t) * from[1] + 2 * (1 - t) * t * mid[1] + t * t * to[1]
    const r = Math.ceil(bridgeRadius)
    for (let y = Math.max(0, Math.floor(py - r)); y <= Math.min(size - 1, Math.ceil(py + r)); y++) {
      for (let x = Math.max(0, Math.floor(px - r)); x <= Math.min(size - 1, Math.ceil(px + r)); x++) {
        const d = Math.hypot(x - px, y - py)
        const i = y * size + x
        if (canvas.labels[i] === WATER && canvas.bridgeable[i] === 1 && allowed.bridges && d <= bridgeRadius) {
          canvas.set(i, BRIDGES, bridgeRegion(), deckHeight)
          bridged = true
        } else if (d <= radius && canvas.isLand(i)) {
          canvas.set(i, ROADS, roadRegion)
        }
      }
    }
  }
  return bridged
}

// ---------------------------------------------------------------------------------------------
// Ships: pointed hulls on open water with a superstructure and strong scatterers.

const paintShips = (canvas: LayoutCanvas, wanted: number, heading: (x: number, y: number) => number): number => {
  const { size, rng } = canvas
  // Hulls plus their margins, so ships never touch.
  const taken = new Uint8Array(size * size)
  let placed = 0
  for (let attempt = 0; attempt < wanted * 30 && placed < wanted; attempt++) {
    const length = rng.between(14, Math.min(36, size / 4))
    const beam = length / rng.between(4, 5.5)
    const cx = rng.between(0, size)
    const cy = rng.between(0, size)
    const angle = heading(cx, cy) + rng.between(-0.25, 0.25)
    const cos = Math.cos(angle)
    const sin = Math.sin(angle)
    const reach = length / 2 + 4
    const x0 = Math.floor(cx - reach)
    const y0 = Math.floor(cy - reach)
    const x1 = Math.ceil(cx + reach)
    const y1 = Math.ceil(cy + reach)
    if (x0 < 0 || y0 < 0 || x1 >= size || y1 >= size) continue
    // The hull plus a 3-pixel margin must be open water (no land, bridge or other ship).
    const inside = (x: number, y: number, margin: number) => {
      const u = (x - cx) * cos + (y - cy) * sin
      const v = -(x - cx) * sin + (y - cy) * cos
      const half = length / 2 + margin
      if (Math.abs(u) > half) return false
      const bow = Math.min(1, (half - u) / (0.3 * length))
      return Math.abs(v) <= (beam / 2 + margin) * bow
    }
    let clear = true
    for (let y = y0; y <= y1 && clear; y++) {
      for (let x = x0; x <= x1; x++) {
        const i = y * size + x
        if (inside(x, y, 3) && (canvas.labels[i] !== WATER || taken[i] === 1)) {
          clear = false
          break
        }
      }
    }
    if (!clear) continue
    const region = canvas.region(SHIPS)
    const superstructure = rng.between(-0.45, -0.15) * length
    const hull = rng.between(2.5, 4)
    const tower = rng.between(8, 14)
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const i = y * size + x
        if (inside(x, y, 3)) taken[i] = 1
        if (!inside(x, y, 0)) continue
        const u = (x - cx) * cos + (y - cy) * sin
        canvas.set(i, SHIPS, region, Math.abs(u - superstructure) < 0.12 * length ? tower : hull)
      }
    }
    const along = (u: number, v: number): [number, number] => [cx + u * cos - v * sin, cy + u * sin + v * cos]
    const scatterers: Array<[number, number, number]> = [
      [superstructure, 0, tower],
      [superstructure + 0.1 * length, beam / 3, tower * 0.8],
      [length * 0.45, 0, hull]
    ]
    for (const [u, v, h] of scatterers.slice(0, rng.integer(2, 3))) {
      const [x, y] = along(u, v)
      canvas.pointTargets.push({ x, y, height: h, intensity: Math.pow(10, rng.between(1.2, 2.2)) })
    }
    placed++
  }
  return placed
}

/** Canopy heights: 10–20 m with smooth variation, so forest edges show layover and shadow. */
const growForest = (canvas: LayoutCanvas) => {
  const { size, rng } = canvas
  const broad = valueNoise(rng, size, 24)
  const fine = valueNoise(rng, size, 5)
  for (let i = 0; i < size * size; i++) {
    if (canvas.labels[i] === FOREST) canvas.heights[i] = 10 + 8 * broad[i]! + 2 * fine[i]!
  }
}

export const generateLayout = (rng: SeededRandom, size: number, exclude: ReadonlySet<SceneClass>): SceneLayout => {
  const allowed = allowedClasses(exclude)
  const kind = chooseKind(rng, allowed)
  const canvas = new LayoutCanvas(size, rng)
  if (kind === "open-water") {
    const water = canvas.region(WATER)
    for (let i = 0; i < size * size; i++) canvas.set(i, WATER, water)
  } else paintParcels(canvas, kind, allowed)

  let heading: (x: number, y: number) => number = () => rng.between(0, Math.PI)
  let coast: Coast | undefined
  let river: River | undefined
  if (kind === "harbour" || kind === "coast") {
    coast = paintCoast(canvas, kind === "harbour")
    if (kind === "harbour" && allowed.bridges && rng.chance(0.7)) paintCanal(canvas, coast)
    const side = coast.side
    // Moored or coasting ships lie roughly parallel to the shore.
    heading = () => (side === 0 || side === 2 ? 0 : Math.PI / 2)
  } else if (kind === "river") {
    river = paintRiver(canvas)
    const { horizontal, centre } = river
    heading = (x, y) => {
      const along = horizontal ? x : y
      const slope = centre(along + 1) - centre(along - 1)
      return horizontal ? Math.atan2(slope, 2) : Math.atan2(2, slope)
    }
  } else if (kind === "lake") paintLake(canvas)

  let buildings = 0
  if (allowed.urban && (kind === "town" || kind === "harbour" || (kind !== "open-water" && rng.chance(0.2)))) {
    let zone: (x: number, y: number) => boolean
    if (kind === "harbour" && coast) {
      const { side, shore } = coast
      const depth = rng.between(0.3, 0.5) * size
      zone = (x, y) => {
        const [d, t] = edgeFrame(side, size, x, y)
        return d < shore(t) + depth
      }
    } else {
      const w = rng.between(kind === "town" ? 0.6 : 0.25, kind === "town" ? 1 : 0.45) * size
      const h = rng.between(kind === "town" ? 0.6 : 0.25, kind === "town" ? 1 : 0.45) * size
      const x0 = rng.between(0, size - w)
      const y0 = rng.between(0, size - h)
      zone = (x, y) => x >= x0 && x < x0 + w && y >= y0 && y < y0 + h
    }
    buildings = paintUrban(canvas, zone, allowed)
  }

  let roads = 0
  let bridges = 0
  if (allowed.roads && kind !== "open-water") {
    const roadRegion = canvas.region(ROADS)
    let bridgeRegion: number | undefined
    const onBridge = () => (bridgeRegion ??= canvas.region(BRIDGES))
    const wanted = kind === "woodland" ? rng.integer(0, 1) : rng.integer(1, 2)
    for (let r = 0; r < wanted; r++) {
      let from: [number, number]
      let to: [number, number]
      if (r === 0 && river) {
        // The first road crosses the river, so a river scene has its bridge.
        const sides: [Side, Side] = river.horizontal ? [0, 2] : [3, 1]
        from = edgePoint(rng, size, sides[0])
        to = edgePoint(rng, size, sides[1])
      } else if (r === 0 && coast && kind === "harbour") {
        // Along the coast, through the canal.
        const depth = coast.shore(size / 2) + rng.between(6, 0.2 * size)
        from = edgeLine(coast.side, size, depth, -2)
        to = edgeLine(coast.side, size, depth, size + 1)
      } else {
        const a = rng.integer(0, 3) as Side
        from = edgePoint(rng, size, a)
        to = edgePoint(rng, size, ((a + 2) % 4) as Side)
      }
      if (paintRoad(canvas, from, to, allowed, roadRegion, onBridge)) bridges++
      roads++
    }
  }

  growForest(canvas)

  let ships = 0
  if (allowed.ships && kind !== "farmland" && kind !== "town" && kind !== "woodland") {
    const wanted = kind === "harbour" ? rng.integer(1, 5) : kind === "open-water" ? rng.integer(1, 6) : kind === "coast" ? rng.integer(0, 3) : rng.integer(0, 2)
    ships = paintShips(canvas, wanted, heading)
  }

  return {
    size,
    kind,
    labels: canvas.labels,
    heights: canvas.heights,
    regions: canvas.regions,
    regionInfo: canvas.regionInfo,
    pointTargets: canvas.pointTargets,
    counts: { ships, bridges, roads, buildings }
  }
}

/** A point at distance `d` from the coast's edge, at position `t` along it (image coordinates). */
const edgeLine = (side: Side, size: number, d: number, t: number): [number, number] =>
  side === 0 ? [t, d] : side === 1 ? [size - 1 - d, t] : side === 2 ? [t, size - 1 - d] : [d, t]
