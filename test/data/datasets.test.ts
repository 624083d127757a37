import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatasetsLive } from "../../adapters/data/datasets-live.ts"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { imageFolder, meanStd, synthetic } from "../../framework/declaration/dataset.ts"
import { amplitudeStatistics, normaliseMeanStd, validityMask } from "../../framework/sar/normalisation.ts"
import { toAmplitude } from "../../framework/sar/units.ts"
import { Datasets, type TrainingSample } from "../../framework/services/datasets.ts"
import { ImageIO, type Raster } from "../../framework/services/image-io.ts"
import { pngOfZeros } from "../support/decompression-bombs.ts"
import { realScene } from "../support/real-scene.ts"

const layer = DatasetsLive.pipe(Layer.provideMerge(ImageIOLive))
const scene = realScene
/** numpy on the real scene (tools/make_sar_golden.py). */
const golden = JSON.parse(readFileSync("test/fixtures/data/s1-grd-golden.json", "utf8"))

const folderWith = (lines: ReadonlyArray<object | string>) => {
  const folder = mkdtempSync(join(tmpdir(), "sardine-folder-"))
  if (lines.length > 0) {
    writeFileSync(join(folder, "metadata.jsonl"), lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n") + "\n")
  }
  return folder
}

const grey = (width: number, height: number, f: (x: number, y: number) => number): Raster => ({
  width,
  height,
  channels: 1,
  data: Float32Array.from({ length: width * height }, (_, i) => f(i % width, Math.floor(i / width)))
})

/** The real scene's dB values, cropped: distinct, realistic content per file. */
const sceneCrop = (io: typeof ImageIO.Service, x0: number, y0: number, width: number, height: number) =>
  io.read(scene).pipe(Effect.map((s) => grey(width, height, (x, y) => s.data[(y0 + y) * s.width + x0 + x]!)))

const at = (sample: TrainingSample, row: number, col: number) => sample.pixels[row * sample.width + col]

describe("image-folder datasets", () => {
  it.effect("the real scene in dB, tiled: unit conversion, per-image A/(mean+3·std), [-1, 1], captions with the token", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const folder = folderWith([{ file_name: "s1.tif", text: "a wetland with ponds, roads and fields" }])
      symlinkSync(scene, join(folder, "s1.tif"))
      // The scene lives outside the folder: reading it through the link is declared.
      const dataset = imageFolder(folder, {
        unit: "db",
        resolution: { size: 64, mode: "tile" },
        captionTemplate: "{token} image of {caption}",
        followSymlinks: true
      })
      const { samples, skipped } = yield* datasets.load(dataset, { token: "<SAR>" })
      expect(skipped).toEqual([])
      // 268 × 217 in 64-pixel tiles: 4 across, 3 down; the remainder is not used.
      expect(samples.map((s) => s.id)).toEqual(
        [0, 64, 128].flatMap((y) => [0, 64, 128, 192].map((x) => `s1.tif@${x},${y}`))
      )
      expect(new Set(samples.map((s) => s.caption))).toEqual(new Set(["<SAR> image of a wetland with ponds, roads and fields"]))
      const byId = new Map(samples.map((s) => [s.id, s]))
      // numpy's normalised values at (row, column) of the whole scene, found in their tiles.
      const expectPixel = (k: number, tile: string, row: number, col: number) =>
        expect(at(byId.get(tile)!, row, col)).toBeCloseTo(2 * golden.meanStd.pixels[k] - 1, 5)
      expectPixel(1, "s1.tif@0,0", 10, 20) // (10, 20)
      expectPixel(2, "s1.tif@128,64", 36, 22) // (100, 150)
      expectPixel(4, "s1.tif@192,0", 57, 9) // (57, 201)
      for (const s of samples) {
        expect([s.width, s.height, s.channels, s.pixels.length]).toEqual([64, 64, 1, 64 * 64])
        expect(Math.min(...s.pixels)).toBeGreaterThanOrEqual(-1)
        expect(Math.max(...s.pixels)).toBeLessThanOrEqual(1)
      }
      const error = yield* Effect.flip(datasets.load(dataset))
      expect(error.message).toBe(`${folder}: captionTemplate "{token} image of {caption}" inserts {token}, but no learned token was given`)
    }).pipe(Effect.provide(layer)))

  it.effect("bad files: skipped, counted and listed with onError skip; with onError fail, every one of them is listed, then the load fails", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const io = yield* ImageIO
      const folder = folderWith([
        { file_name: "good.tif", text: "good" },
        { file_name: "empty.tif", text: "empty" },
        { file_name: "cut.png", text: "cut" },
        { file_name: "notes.tif", text: "not an image" },
        { file_name: "small.tif", text: "too small" },
        { file_name: "colour.png", text: "colour" },
        { file_name: "gone.tif", text: "missing" },
        "{not json"
      ])
      yield* io.writeFloatTiff(join(folder, "good.tif"), yield* sceneCrop(io, 0, 0, 40, 40))
      writeFileSync(join(folder, "empty.tif"), "")
      yield* io.writePng8(join(folder, "whole.png"), grey(40, 40, (x, y) => x + y))
      writeFileSync(join(folder, "cut.png"), readFileSync(join(folder, "whole.png")).subarray(0, 50))
      writeFileSync(join(folder, "notes.tif"), "these are not pixels")
      yield* io.writeFloatTiff(join(folder, "small.tif"), grey(16, 16, () => -10))
      yield* io.writePng8(join(folder, "colour.png"), {
        width: 40,
        height: 40,
        channels: 3,
        data: Float32Array.from({ length: 40 * 40 * 3 }, (_, i) => i % 3 === 0 ? 10 : 200)
      })
      const declared = { unit: "db" as const, resolution: { size: 32 } }
      const { samples, skipped } = yield* datasets.load(imageFolder(folder, { ...declared, onError: "skip" }))
      expect(samples.map((s) => s.id)).toEqual(["good.tif"])
      expect(skipped.map((s) => [s.file.slice(folder.length + 1), s.kind])).toEqual([
        ["metadata.jsonl line 8", "metadata"],
        ["empty.tif", "empty"],
        ["cut.png", "truncated"],
        ["notes.tif", "unsupported"],
        ["small.tif", "too-small"],
        ["colour.png", "bands"],
        ["gone.tif", "unreadable"]
      ])
      expect(skipped.find((s) => s.kind === "too-small")!.reason).toBe("image 16 × 16 is smaller than the training size 32")
      expect(skipped.find((s) => s.kind === "bands")!.reason).toMatch(/^has 3 bands whose values differ .*declare which band to use$/)
      // Declaring the band makes the colour file usable, and the one-band file short of a band 1.
      const banded = yield* datasets.load(imageFolder(folder, { ...declared, band: 1, onError: "skip" }))
      expect(banded.samples.map((s) => s.id)).toEqual(["colour.png"])
      expect(banded.skipped.find((s) => s.file.endsWith("good.tif"))).toMatchObject({
        kind: "bands",
        reason: "band 1 requested but the file has 1 band (numbered from 0)"
      })

      const failure = yield* Effect.flip(datasets.load(imageFolder(folder, declared)))
      if (failure._tag !== "DatasetFileProblems") throw new Error(`expected the file problems, got ${failure._tag}`)
      expect(failure.problems).toEqual(skipped)
      const lines = failure.message.split("\n")
      expect(lines[0]).toBe(`${folder}: 7 file problems (the dataset declares onError: "fail"):`)
      expect(lines.slice(1, 8).map((l) => l.split("  ").slice(1, 3))).toEqual(
        skipped.map((p) => [p.file.slice(folder.length + 1), `[${p.kind}]`])
      )
      expect(lines[8]).toContain(`declare onError: "skip" to leave these files out`)
    }).pipe(Effect.provide(layer)))

  it.effect("an image over the pixel limit is refused from its header: skipped, or listed by onError fail; the declared limit decides", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const io = yield* ImageIO
      const folder = folderWith([{ file_name: "good.png", text: "good" }, { file_name: "zeros.png", text: "877 KB, 30000 × 30000" }])
      yield* io.writePng8(join(folder, "good.png"), grey(40, 40, (x, y) => 10 + x + y))
      writeFileSync(join(folder, "zeros.png"), pngOfZeros(30000, 30000))
      const declared = { unit: "amplitude" as const, resolution: { size: 32 } }
      const skipping = yield* datasets.load(imageFolder(folder, { ...declared, onError: "skip" }))
      expect(skipping.samples.map((s) => s.id)).toEqual(["good.png"])
      expect(skipping.skipped).toEqual([{
        file: join(folder, "zeros.png"),
        kind: "too-large",
        reason: expect.stringMatching(/^too large: 30000 × 30000 pixels in a file of 877 KB is over the pixel limit of 268435456 \(16384 × 16384\)/)
      }])
      const failing = yield* Effect.flip(datasets.load(imageFolder(folder, declared)))
      expect(failing.message).toContain("  zeros.png  [too-large]  too large: 30000 × 30000 pixels")
      // A declared limit below 40 × 40 refuses the good file too.
      const strict = yield* datasets.load(imageFolder(folder, { ...declared, onError: "skip", maxPixels: 1599 }))
      expect(strict.skipped.map((s) => [s.file.slice(folder.length + 1), s.kind])).toEqual([["good.png", "too-large"], ["zeros.png", "too-large"]])
    }).pipe(Effect.provide(layer)))

  it.effect("a symbolic link leading outside the folder is refused unless the dataset declares followSymlinks", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const io = yield* ImageIO
      const outside = mkdtempSync(join(tmpdir(), "sardine-outside-"))
      yield* io.writePng8(join(outside, "secret.png"), grey(16, 16, (x) => 100 + x))
      const folder = folderWith([
        { file_name: "real.png", text: "a file of the folder", conditioning_file_name: "real.png" },
        { file_name: "alias.png", text: "a link to a file of the folder", conditioning_file_name: "real.png" },
        { file_name: "escape.png", text: "a link to a file outside", conditioning_file_name: "real.png" },
        { file_name: "linked/secret.png", text: "through a linked folder", conditioning_file_name: "real.png" },
        { file_name: "paired.png", text: "conditioning outside", conditioning_file_name: "escape.png" }
      ])
      yield* io.writePng8(join(folder, "real.png"), grey(16, 16, (x, y) => 10 + x * y))
      yield* io.writePng8(join(folder, "paired.png"), grey(16, 16, (x, y) => 20 + x + y))
      symlinkSync(join(folder, "real.png"), join(folder, "alias.png"))
      symlinkSync(join(outside, "secret.png"), join(folder, "escape.png"))
      symlinkSync(outside, join(folder, "linked"))
      const declared = { unit: "amplitude" as const, resolution: { size: 16 }, onError: "skip" as const }
      const condition = { input: "optical", column: "conditioning_file_name" } as const
      const refused = yield* datasets.load(imageFolder(folder, declared), { condition })
      expect(refused.samples.map((s) => s.id)).toEqual(["real.png", "alias.png"])
      expect(refused.skipped.map((s) => [s.file.slice(folder.length + 1), s.kind])).toEqual([
        ["escape.png", "outside-folder"],
        ["linked/secret.png", "outside-folder"],
        ["escape.png", "conditioning"]
      ])
      expect(refused.skipped[0]!.reason).toBe(
        `a symbolic link to ${join(outside, "secret.png")}, outside the dataset folder (declare followSymlinks: true on the dataset to read it)`
      )
      expect(refused.skipped[2]!.reason).toContain(`conditioning image: a symbolic link to ${join(outside, "secret.png")}`)
      const followed = yield* datasets.load(imageFolder(folder, { ...declared, followSymlinks: true }), { condition })
      expect(followed.skipped).toEqual([])
      expect(followed.samples.map((s) => s.id)).toEqual(["real.png", "alias.png", "escape.png", "linked/secret.png", "paired.png"])
      // Without metadata.jsonl, the images found in the folder are checked the same way.
      const listed = folderWith([])
      yield* io.writePng8(join(listed, "own.png"), grey(16, 16, (x) => 30 + x))
      symlinkSync(join(outside, "secret.png"), join(listed, "borrowed.png"))
      const found = yield* datasets.load(imageFolder(listed, declared))
      expect(found.samples.map((s) => s.id)).toEqual(["own.png"])
      expect(found.skipped.map((s) => [s.file.slice(listed.length + 1), s.kind])).toEqual([["borrowed.png", "outside-folder"]])
      // metadata.jsonl itself: its lines would be echoed in errors, so a link out is refused too.
      const borrowedMetadata = folderWith([])
      symlinkSync(join(folder, "metadata.jsonl"), join(borrowedMetadata, "metadata.jsonl"))
      const error = yield* Effect.flip(datasets.load(imageFolder(borrowedMetadata, declared)))
      expect(error.message).toBe(
        `${join(borrowedMetadata, "metadata.jsonl")}: metadata.jsonl is a symbolic link to ${
          join(folder, "metadata.jsonl")
        }, outside the dataset folder (declare followSymlinks: true on the dataset to read it)`
      )
    }).pipe(Effect.provide(layer)))

  it.effect("a FIFO named metadata.jsonl or like an image is named, never waited on", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const folder = folderWith([])
      execFileSync("mkfifo", [join(folder, "metadata.jsonl")])
      const error = yield* Effect.flip(datasets.load(imageFolder(folder, { unit: "db" })))
      expect(error.message).toBe(`${join(folder, "metadata.jsonl")}: metadata.jsonl is not a regular file`)
      const images = folderWith([])
      execFileSync("mkfifo", [join(images, "pipe.png")])
      const { skipped } = yield* datasets.load(imageFolder(images, { unit: "db", onError: "skip" }))
      expect(skipped).toEqual([{ file: join(images, "pipe.png"), kind: "unreadable", reason: "cannot read: not a regular file (a pipe, socket or device)" }])
    }).pipe(Effect.provide(layer)))

  it.effect("random crops and flips follow the seed; pixels come from the declared window", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const io = yield* ImageIO
      const names = ["a", "b", "c", "d", "e", "f", "g", "h"].map((n) => `${n}.tif`)
      const folder = folderWith(names.map((file_name) => ({ file_name, text: file_name })))
      const originals = new Map<string, Raster>()
      for (const [k, name] of names.entries()) {
        const raster = yield* sceneCrop(io, 10 * k, 5 * k, 48, 40)
        originals.set(name, raster)
        yield* io.writeFloatTiff(join(folder, name), raster)
      }
      const declaration = (seed: number) => imageFolder(folder, { unit: "db", seed, resolution: { size: 24, mode: "random-crop", flip: "both" } })
      const first = yield* datasets.load(declaration(5))
      const again = yield* datasets.load(declaration(5))
      const other = yield* datasets.load(declaration(6))
      expect(again.samples.map((s) => s.window)).toEqual(first.samples.map((s) => s.window))
      expect(again.samples.map((s) => s.pixels)).toEqual(first.samples.map((s) => s.pixels))
      expect(other.samples.map((s) => s.window)).not.toEqual(first.samples.map((s) => s.window))
      const windows = first.samples.map((s) => s.window)
      expect(windows.some((w) => w.flipHorizontal)).toBe(true)
      expect(windows.some((w) => w.flipVertical)).toBe(true)
      expect(new Set(windows.map((w) => `${w.x},${w.y}`)).size).toBeGreaterThan(4)
      for (const sample of first.samples) {
        const raster = originals.get(sample.id)!
        const unit = normaliseMeanStd(toAmplitude(raster.data, "db"))
        const { x, y, size, flipHorizontal, flipVertical } = sample.window
        for (const [row, col] of [[0, 0], [3, 17], [23, 23], [11, 2]] as const) {
          const sourceRow = y + (flipVertical ? size - 1 - row : row)
          const sourceCol = x + (flipHorizontal ? size - 1 - col : col)
          expect(at(sample, row, col)).toBeCloseTo(2 * unit[sourceRow * raster.width + sourceCol]! - 1, 6)
        }
      }
    }).pipe(Effect.provide(layer)))

  it.effect("no-data pixels (file tag or declaration) are left out of the statistics and come out as −1", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const io = yield* ImageIO
      const folder = folderWith([{ file_name: "holes.tif", text: "holes" }, { file_name: "zeros.png", text: "zeros" }])
      const crop = yield* sceneCrop(io, 100, 100, 32, 32)
      const holes = Float32Array.from(crop.data, (v, i) => (i % 7 === 0 ? -99 : v))
      yield* io.writeFloatTiff(join(folder, "holes.tif"), { ...crop, data: holes }, { noData: -99 })
      const zeros = grey(32, 32, (x, y) => (x < 4 ? 0 : 20 + ((x * 7 + y * 13) % 50)))
      yield* io.writePng8(join(folder, "zeros.png"), zeros)

      const tagged = yield* datasets.load(imageFolder(folder, { unit: "db", resolution: { size: 32 }, onError: "skip" }))
      const holesSample = tagged.samples.find((s) => s.id === "holes.tif")!
      const valid = validityMask(holes, -99)
      const expected = normaliseMeanStd(toAmplitude(holes, "db"), { valid })
      expect(amplitudeStatistics(toAmplitude(holes, "db"), valid).count).toBe(32 * 32 - Math.ceil((32 * 32) / 7))
      for (let i = 0; i < holes.length; i++) {
        expect(holesSample.pixels[i]).toBeCloseTo(valid[i] ? 2 * expected[i]! - 1 : -1, 6)
      }
      // A declared no-data value applies to files without a tag: here 0 in an 8-bit amplitude PNG.
      const declared = yield* datasets.load(imageFolder(folder, { unit: "amplitude", noData: 0, resolution: { size: 32 }, onError: "skip" }))
      const zerosSample = declared.samples.find((s) => s.id === "zeros.png")!
      const zeroValid = validityMask(zeros.data, 0)
      const zeroExpected = normaliseMeanStd(zeros.data, { valid: zeroValid })
      expect(Array.from(zerosSample.pixels).map((v) => Math.round(v * 1e5))).toEqual(
        Array.from(zeroExpected, (v, i) => Math.round((zeroValid[i] ? 2 * v - 1 : -1) * 1e5))
      )
    }).pipe(Effect.provide(layer)))

  it.effect("dataset-wide statistics: one mean and std over all files", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const io = yield* ImageIO
      const folder = folderWith([{ file_name: "dark.tif", text: "dark" }, { file_name: "bright.tif", text: "bright" }])
      const dark = yield* sceneCrop(io, 0, 150, 32, 32)
      const bright = yield* sceneCrop(io, 200, 20, 32, 32)
      yield* io.writeFloatTiff(join(folder, "dark.tif"), dark)
      yield* io.writeFloatTiff(join(folder, "bright.tif"), bright)
      const { samples } = yield* datasets.load(
        imageFolder(folder, { unit: "db", resolution: { size: 32 }, normalisation: meanStd({ statistics: "dataset" }) })
      )
      const all = new Float32Array([...toAmplitude(dark.data, "db"), ...toAmplitude(bright.data, "db")])
      const expected = normaliseMeanStd(all, { statistics: amplitudeStatistics(all) })
      const got = [...samples[0]!.pixels, ...samples[1]!.pixels]
      expect(Math.max(...got.map((v, i) => Math.abs(v - (2 * expected[i]! - 1))))).toBeLessThan(1e-6)
      // Per image, the dark file would be stretched: the two normalisations differ.
      const perImage = normaliseMeanStd(toAmplitude(dark.data, "db"))
      expect(Math.abs(samples[0]!.pixels[0]! - (2 * perImage[0]! - 1))).toBeGreaterThan(1e-3)
    }).pipe(Effect.provide(layer)))

  it.effect("conditioning images are cut and flipped with their sample, 8-bit values scaled to [0, 1]", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const io = yield* ImageIO
      const folder = folderWith([{ file_name: "image.png", text: "paired", conditioning_file_name: "labels/image.png" }])
      const image = grey(40, 36, (x, y) => 10 + ((x * 3 + y * 5) % 200))
      yield* io.writePng8(join(folder, "image.png"), {
        ...image,
        channels: 3,
        data: Float32Array.from({ length: image.data.length * 3 }, (_, i) => image.data[Math.floor(i / 3)]!)
      })
      const labels = grey(40, 36, (x, y) => (x * 7 + y * 11) % 256)
      mkdirSync(join(folder, "labels"))
      yield* io.writePng8(join(folder, "labels", "image.png"), labels)
      for (const seed of [1, 2, 3, 4]) {
        const { samples } = yield* datasets.load(
          imageFolder(folder, { unit: "amplitude", seed, resolution: { size: 16, mode: "random-crop", flip: "both" } }),
          { condition: { input: "optical", column: "conditioning_file_name" } }
        )
        const [sample] = samples
        assert.isDefined(sample)
        const { x, y, size, flipHorizontal, flipVertical } = sample.window
        const c = sample.conditioning!
        expect([c.width, c.height, c.channels]).toEqual([16, 16, 1])
        for (let row = 0; row < size; row++) {
          for (let col = 0; col < size; col++) {
            const sx = x + (flipHorizontal ? size - 1 - col : col)
            const sy = y + (flipVertical ? size - 1 - row : row)
            expect(c.data[row * size + col]).toBe(Math.fround(labels.data[sy * 40 + sx]! / 255))
          }
        }
      }
    }).pipe(Effect.provide(layer)))

  it.effect("without metadata.jsonl every image is used, with an empty caption", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const io = yield* ImageIO
      const folder = folderWith([])
      mkdirSync(join(folder, "nested"))
      yield* io.writePng8(join(folder, "nested", "b.png"), grey(16, 16, (x) => 10 + x))
      yield* io.writePng16(join(folder, "a.png"), grey(16, 16, (x, y) => 1000 + x * y))
      const { samples } = yield* datasets.load(imageFolder(folder, { unit: "amplitude", resolution: { size: 16 } }))
      expect(samples.map((s) => [s.id, s.caption])).toEqual([["a.png", ""], ["nested/b.png", ""]])
    }).pipe(Effect.provide(layer)))

  it.effect("relative paths resolve against the given root; a missing folder is named", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const root = folderWith([])
      const error = yield* Effect.flip(datasets.load(imageFolder("data/sar", { unit: "db" }), { root }))
      expect(error.message).toBe(`${join(root, "data", "sar")}: no such folder`)
    }).pipe(Effect.provide(layer)))
})

describe("synthetic datasets as training samples", () => {
  it.effect("SAR scenes, normalised, with captions from the layout and label maps as conditioning", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const dataset = synthetic({ n: 3, size: 48, seed: 2, captionTemplate: "{token} image of {caption}" })
      const condition = { input: "label-map", column: "conditioning_file_name", classValues: [1, 2, 3, 4, 5, 6, 7, 8] } as const
      const { samples, skipped } = yield* datasets.load(dataset, { token: "<SAR>", condition })
      expect(skipped).toEqual([])
      expect(samples.map((s) => s.id)).toEqual(["scene-000000", "scene-000001", "scene-000002"])
      for (const s of samples) {
        expect(s.caption).toMatch(/^<SAR> image of (a |an |farmland|woodland|open water)/)
        expect([s.channels, s.pixels.length]).toEqual([1, 48 * 48])
        expect(Math.min(...s.pixels)).toBeGreaterThanOrEqual(-1)
        expect(Math.max(...s.pixels)).toBeLessThanOrEqual(1)
        // One-hot: eight channels, exactly one 1 per pixel.
        const c = s.conditioning!
        expect([c.width, c.height, c.channels]).toEqual([48, 48, 8])
        for (let p = 0; p < 48 * 48; p++) expect(c.data.slice(p * 8, p * 8 + 8).reduce((a, b) => a + b, 0)).toBe(1)
      }
      const optical = yield* datasets.load(synthetic({ n: 1, size: 48, seed: 2, modality: "optical" }))
      expect(optical.samples[0]!.channels).toBe(3)
      expect(optical.samples[0]!.caption).toBe(samples[0]!.caption.replace("<SAR> image of", "optical image of"))
      // Grey: one band, the mean of R, G and B, as the generate step reduces a three-channel sample.
      const grey = yield* datasets.load(synthetic({ n: 1, size: 48, seed: 2, modality: "optical", colour: "grey" }))
      const [rgb, mean] = [optical.samples[0]!, grey.samples[0]!]
      expect([mean.channels, mean.pixels.length, mean.caption]).toEqual([1, 48 * 48, rgb.caption])
      for (let p = 0; p < 48 * 48; p++) {
        expect(mean.pixels[p]!).toBeCloseTo((rgb.pixels[3 * p]! + rgb.pixels[3 * p + 1]! + rgb.pixels[3 * p + 2]!) / 3, 5)
      }
    }).pipe(Effect.provide(layer)))

  it.effect("samples stream: taking two of ten million scenes generates two", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const items = yield* Stream.runCollect(datasets.samples(synthetic({ n: 10_000_000, size: 32 })).pipe(Stream.take(2)))
      expect(items.length).toBe(2)
    }).pipe(Effect.provide(layer)))
})
