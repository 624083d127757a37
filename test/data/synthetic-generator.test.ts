import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"
import { DatasetsLive } from "../../adapters/data/datasets-live.ts"
import { SeededRandom } from "../../adapters/data/seeded-random.ts"
import { BARE_FIELD, BRIDGES, SHIPS, URBAN, WATER } from "../../adapters/data/synthetic/scene-classes.ts"
import { generateScene } from "../../adapters/data/synthetic/scene-generator.ts"
import type { PointTarget, SceneLayout } from "../../adapters/data/synthetic/scene-layout.ts"
import { renderSar } from "../../adapters/data/synthetic/sar-render.ts"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { type LookDirection, sceneClasses, synthetic } from "../../framework/declaration/dataset.ts"
import { normaliseMeanStd } from "../../framework/sar/normalisation.ts"
import { Datasets } from "../../framework/services/datasets.ts"
import { ImageIO } from "../../framework/services/image-io.ts"

const layer = DatasetsLive.pipe(Layer.provideMerge(ImageIOLive))
const scratch = () => mkdtempSync(join(tmpdir(), "sardine-synth-"))

/** Everything but water: the generator paints open water, one homogeneous area covering the scene. */
const onlyWater = sceneClasses.filter((c) => c !== "water")

const intensityEnl = (amplitude: Float32Array) => {
  let mean = 0
  let square = 0
  for (const a of amplitude) {
    mean += a * a
    square += a ** 4
  }
  mean /= amplitude.length
  square /= amplitude.length
  return (mean * mean) / (square - mean * mean)
}

const coefficientOfVariation = (values: ArrayLike<number>) => {
  let sum = 0
  let square = 0
  for (let i = 0; i < values.length; i++) {
    sum += values[i]!
    square += values[i]! ** 2
  }
  const mean = sum / values.length
  return Math.sqrt(square / values.length - mean * mean) / mean
}

const filesUnder = (folder: string): Array<string> =>
  readdirSync(folder, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => relative(folder, join(e.parentPath, e.name)))
    .sort()

describe("synthetic SAR statistics on generated homogeneous areas", () => {
  it.effect("intensity ENL is within 5 % of the declared looks; single-look amplitude CV within 3 % of 0.5227", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const io = yield* ImageIO
      for (const looks of [1, 4]) {
        const folder = join(scratch(), `water-${looks}`)
        yield* datasets.writeSynthetic(synthetic({ n: 2, size: 320, seed: 11, looks, exclude: onlyWater }), folder)
        for (const name of ["scene-000000", "scene-000001"]) {
          // Read back from the written float32 TIFF: what a user of the dataset gets.
          const { data } = yield* io.read(join(folder, "sar", `${name}.tif`))
          expect(Math.abs(intensityEnl(data) / looks - 1)).toBeLessThan(0.05)
          if (looks === 1) {
            const rayleighCv = Math.sqrt(4 / Math.PI - 1) // 0.5227
            expect(Math.abs(coefficientOfVariation(data) / rayleighCv - 1)).toBeLessThan(0.03)
          }
        }
        const labels = yield* io.read(join(folder, "labels", "scene-000000.png"))
        expect(new Set(labels.data)).toEqual(new Set([WATER]))
      }
    }).pipe(Effect.provide(layer)))

  it("field parcels of a mixed scene: speckle around each parcel's mean has ENL = L", () => {
    const looks = 3
    const scene = generateScene(
      { size: 320, seed: 4, looks, exclude: ["forest", "urban", "water"], lookDirection: "right", incidenceAngle: 35 },
      0,
      { sar: true, optical: false }
    )
    const { amplitude, meanIntensity, pointTargetMask } = scene.sar!
    // Bare-field pixels: no texture, so the mean intensity there is the parcel's constant level.
    const ratios: Array<number> = []
    for (let i = 0; i < amplitude.length; i++) {
      if (scene.layout.labels[i] === BARE_FIELD && pointTargetMask[i] === 0) ratios.push(amplitude[i]! ** 2 / meanIntensity[i]!)
    }
    expect(ratios.length).toBeGreaterThan(30_000)
    const cv = coefficientOfVariation(ratios)
    expect(Math.abs(1 / (cv * cv) / looks - 1)).toBeLessThan(0.05)
  })
})

// ---------------------------------------------------------------------------------------------
// Geometry on hand-made layouts, so the expected positions are known exactly.

const SIZE = 128

const layoutOf = (paint: (x: number, y: number) => [number, number, number], pointTargets: Array<PointTarget> = []): SceneLayout => {
  const labels = new Uint8Array(SIZE * SIZE)
  const heights = new Float32Array(SIZE * SIZE)
  const regions = new Uint32Array(SIZE * SIZE)
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const [label, height, region] = paint(x, y)
      labels[y * SIZE + x] = label
      heights[y * SIZE + x] = height
      regions[y * SIZE + x] = region
    }
  }
  const region = (label: number) => ({ label, tone: 0.5, rowAngle: 0, rowPeriod: 5 })
  return {
    size: SIZE,
    kind: "farmland",
    labels,
    heights,
    regions,
    regionInfo: [region(BARE_FIELD), region(URBAN), region(WATER)],
    pointTargets,
    counts: { ships: 0, bridges: 0, roads: 0, buildings: 1 }
  }
}

/** Pixel index of (range r, azimuth a) for a look direction: r grows away from the sensor. */
const pixel = (direction: LookDirection, r: number, a: number) =>
  direction === "right" ? a * SIZE + r : direction === "left" ? a * SIZE + (SIZE - 1 - r) : direction === "down" ? r * SIZE + a : (SIZE - 1 - r) * SIZE + a

describe("side-looking geometry", () => {
  // A 16 × 16 m building, 20 m tall, centred in bare fields; θ = 35°: layover 20·cot θ = 28.6 px, shadow 20·tan θ = 14 px.
  const building = layoutOf((x, y) => (x >= 56 && x < 72 && y >= 56 && y < 72 ? [URBAN, 20, 1] : [BARE_FIELD, 0, 0]))
  const background = Math.pow(10, -13 / 10)

  for (const direction of ["right", "left", "down", "up"] as const) {
    it(`looking ${direction}: layover toward the sensor, shadow behind, double bounce at the base`, () => {
      const { amplitude } = renderSar(building, { looks: 16, lookDirection: direction, incidenceAngle: 35 }, new SeededRandom(1))
      // Mean intensity along range over the building's middle rows (or columns).
      const profile = Array.from({ length: SIZE }, (_, r) => {
        let sum = 0
        for (let a = 58; a < 70; a++) sum += amplitude[pixel(direction, r, a)]! ** 2
        return sum / 12
      })
      const mean = (from: number, to: number) => profile.slice(from, to).reduce((s, v) => s + v, 0) / (to - from)
      expect(mean(5, 20)).toBeCloseTo(background, 2) // undisturbed field in front
      // The roof lands 28.6 px toward the sensor, at r ∈ [27.4, 43.4): bright, on top of the ground.
      expect(mean(30, 42)).toBeGreaterThan(3 * background)
      // Its footprint and the 14 px behind it are dark: nothing maps there / radar shadow.
      expect(mean(58, 70)).toBeLessThan(0.1 * background)
      expect(mean(73, 85)).toBeLessThan(0.1 * background)
      expect(mean(90, 120)).toBeCloseTo(background, 2) // beyond the shadow
      // The brightest line is the wall–ground dihedral at the base facing the sensor (r = 55.5).
      const peak = profile.indexOf(Math.max(...profile))
      expect([55, 56]).toContain(peak)
      // Brightness centroid of everything above the background: displaced toward the sensor.
      let weight = 0
      let moment = 0
      profile.forEach((v, r) => {
        const excess = Math.max(0, v - 2 * background)
        weight += excess
        moment += excess * r
      })
      expect(moment / weight).toBeLessThan(63.5 - 10)
    })
  }

  it("a point scatterer shows the sinc pattern: first sidelobe −13.26 dB, nulls at multiples of the resolution", () => {
    // Resolution 1.5 px; the sidelobe peak sits 1.4303 resolutions (2.145 px) from the target.
    const target: PointTarget = { x: 60 - 1.4303 * 1.5, y: 64, height: 0, intensity: 1e4 }
    const water = layoutOf(() => [WATER, 0, 2], [target])
    const { amplitude } = renderSar(water, { looks: 1, lookDirection: "right", incidenceAngle: 35 }, new SeededRandom(2))
    const db = (x: number, y: number) => 10 * Math.log10(amplitude[y * SIZE + x]! ** 2 / target.intensity)
    expect(db(60, 64)).toBeCloseTo(-13.26, 1)
    // Azimuth: the target is on row 64, so the response there is the range sinc alone; one row
    // off (2/3 of a resolution) the azimuth sinc takes sinc(2/3)² = -7.67 dB more.
    expect(db(60, 65) - db(60, 64)).toBeCloseTo(-7.67, 1)
    // A null 2 resolutions (3 px) from the target along azimuth: only clutter ~60 dB lower.
    expect(db(Math.round(target.x), 67)).toBeLessThan(-40)
  })
})

describe("the synthetic dataset on disk", () => {
  it.effect("same seed ⇒ identical files; different seed ⇒ different files", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const root = scratch()
      const declaration = synthetic({ n: 3, size: 64, seed: 7, looks: 2 })
      yield* datasets.writeSynthetic(declaration, join(root, "a"))
      yield* datasets.writeSynthetic(declaration, join(root, "b"))
      yield* datasets.writeSynthetic({ ...declaration, seed: 8 }, join(root, "c"))
      const files = filesUnder(join(root, "a"))
      expect(files).toEqual([
        "labels/scene-000000.png",
        "labels/scene-000001.png",
        "labels/scene-000002.png",
        "metadata.jsonl",
        "optical/scene-000000.png",
        "optical/scene-000001.png",
        "optical/scene-000002.png",
        "previews/scene-000000.png",
        "previews/scene-000001.png",
        "previews/scene-000002.png",
        "sar/scene-000000.tif",
        "sar/scene-000001.tif",
        "sar/scene-000002.tif",
        "synthetic.json"
      ])
      expect(filesUnder(join(root, "b"))).toEqual(files)
      for (const file of files) expect(readFileSync(join(root, "b", file)).equals(readFileSync(join(root, "a", file))), file).toBe(true)
      for (const file of files.filter((f) => f.startsWith("sar/") || f.startsWith("optical/"))) {
        expect(readFileSync(join(root, "c", file)).equals(readFileSync(join(root, "a", file))), file).toBe(false)
      }
      expect(readdirSync(root).sort()).toEqual(["a", "b", "c"]) // no partial folders left behind
    }).pipe(Effect.provide(layer)))

  it.effect("metadata.jsonl: captions from the layout, paired files, legend; the preview is the normalised amplitude", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const io = yield* ImageIO
      const folder = join(scratch(), "set")
      const summary = yield* datasets.writeSynthetic(synthetic({ n: 4, size: 96, seed: 3 }), folder)
      expect(summary.scenes).toBe(4)
      const lines = readFileSync(join(folder, "metadata.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
      expect(lines).toHaveLength(4)
      const description = JSON.parse(readFileSync(join(folder, "synthetic.json"), "utf8"))
      expect(description.labels).toEqual({ 1: "water", 2: "bare-field", 3: "crops", 4: "forest", 5: "urban", 6: "roads", 7: "bridges", 8: "ships" })
      for (const [k, line] of lines.entries()) {
        const scene = generateScene({ size: 96, seed: 3, looks: 1, exclude: [], lookDirection: "right", incidenceAngle: 35 }, k, { sar: false, optical: false })
        expect(line.file_name).toBe(`sar/scene-00000${k}.tif`)
        expect(line.text).toBe(`SAR image of ${scene.description}`)
        expect(line.scene).toBe(scene.description)
        expect(line.conditioning_file_name).toBe(`labels/scene-00000${k}.png`)
        const labels = yield* io.read(join(folder, line.conditioning_file_name))
        expect(Array.from(labels.data)).toEqual(Array.from(scene.layout.labels))
        expect(line.classes).toEqual([...new Set(scene.layout.labels)].sort((a, b) => a - b).map((l) => sceneClasses[l - 1]))
        const optical = yield* io.read(join(folder, line.optical_file_name))
        expect([optical.width, optical.channels]).toEqual([96, 3])
        const sar = yield* io.read(join(folder, line.file_name))
        const preview = yield* io.read(join(folder, line.preview_file_name))
        const expected = normaliseMeanStd(sar.data)
        expect(Math.max(...preview.data.map((v, i) => Math.abs(v - Math.round(expected[i]! * 255))))).toBe(0)
      }
    }).pipe(Effect.provide(layer)))

  it.effect("refuses a folder that is not empty and leaves it as it was", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const folder = join(scratch(), "busy")
      mkdirSync(folder)
      writeFileSync(join(folder, "keep.txt"), "mine")
      const error = yield* Effect.flip(datasets.writeSynthetic(synthetic({ n: 1, size: 32 }), folder))
      expect(error.message).toBe(`${folder}: output folder exists and is not empty`)
      expect(readdirSync(folder)).toEqual(["keep.txt"])
    }).pipe(Effect.provide(layer)))
})

describe("scene layouts and captions", () => {
  const spec = { size: 192, seed: 21, looks: 1, lookDirection: "right" as const, incidenceAngle: 35 }
  const layoutOnly = { sar: false, optical: false }

  it("captions count what the label map holds", () => {
    const kinds = new Set<string>()
    for (let index = 0; index < 40; index++) {
      const scene = generateScene({ ...spec, exclude: [] }, index, layoutOnly)
      const { layout, description } = scene
      kinds.add(layout.kind)
      const labels = new Set(layout.labels)
      expect(labels.has(SHIPS)).toBe(layout.counts.ships > 0)
      expect(labels.has(BRIDGES)).toBe(layout.counts.bridges > 0)
      if (layout.counts.ships > 0) expect(description).toMatch(/ (a ship|\w+ ships)\b/)
      else expect(description).not.toMatch(/ship/)
      if (layout.kind === "harbour") {
        expect(description).toMatch(/^a harbour with (a ship|(two|three|four|five) ships|urban blocks)( near (a bridge|two bridges))?$/)
      }
      if (layout.kind === "river" && layout.counts.bridges > 0) expect(description).toMatch(/^a river crossed by (a bridge|two bridges)/)
    }
    // Forty scenes cover the scene kinds that exist with every class allowed.
    expect([...kinds].sort()).toEqual(["coast", "farmland", "harbour", "lake", "river", "town", "woodland"])
  })

  it("--exclude withholds classes from every scene and caption", () => {
    for (let index = 0; index < 30; index++) {
      const scene = generateScene({ ...spec, exclude: ["ships", "bridges"] }, index, layoutOnly)
      const labels = new Set(scene.layout.labels)
      expect(labels.has(SHIPS) || labels.has(BRIDGES)).toBe(false)
      expect(scene.description).not.toMatch(/ship|bridge/)
      const dry = generateScene({ ...spec, exclude: ["water"] }, index, layoutOnly)
      expect(new Set(dry.layout.labels).has(WATER)).toBe(false)
      expect(dry.classes).not.toContain("ships")
    }
  })

  it("the look direction changes the SAR rendering, not the layout", () => {
    const right = generateScene({ ...spec, exclude: [] }, 2)
    const left = generateScene({ ...spec, exclude: [], lookDirection: "left" }, 2)
    expect(left.layout.labels).toEqual(right.layout.labels)
    expect(left.optical).toEqual(right.optical)
    expect(left.sar!.amplitude).not.toEqual(right.sar!.amplitude)
  })
})
