import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatasetsLive } from "../../adapters/data/datasets-live.ts"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { inspectionText } from "../../framework/cli/data-inspect.ts"
import { synthetic } from "../../framework/declaration/dataset.ts"
import { Datasets } from "../../framework/services/datasets.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { pngOfZeros } from "../support/decompression-bombs.ts"
import { realScene } from "../support/real-scene.ts"

const layer = DatasetsLive.pipe(Layer.provideMerge(ImageIOLive))
const scene = realScene
const golden = JSON.parse(readFileSync("test/fixtures/data/s1-grd-golden.json", "utf8"))
const scratch = () => mkdtempSync(join(tmpdir(), "sardine-inspect-"))

describe("inspecting a folder", () => {
  it.effect("a synthetic dataset: every image captioned and readable, paired files found, no problems", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const folder = join(scratch(), "synth")
      yield* datasets.writeSynthetic(synthetic({ n: 3, size: 48, seed: 1 }), folder)
      const report = yield* datasets.inspect(folder)
      expect(report).toMatchObject({
        folder,
        images: 3,
        readable: 3,
        formats: { tiff: 3 },
        sampleTypes: { float32: 3 },
        sizes: { "48×48": 3 },
        bands: { 1: 3 },
        metadata: { present: true, lines: 3 },
        captionCoverage: 1,
        unitHint: { unit: "amplitude", why: "synthetic.json says amplitude" },
        nonFinitePixels: 0,
        problems: []
      })
      expect(report.metadata.columns).toContain("conditioning_file_name")
      expect(report.values!.min).toBeGreaterThan(0)
      expect(inspectionText(report)).toContain("problems      none")
    }).pipe(Effect.provide(layer)))

  it.effect("the real scene: dB values from the file, its no-data tag, a dB hint", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const folder = scratch()
      symlinkSync(scene, join(folder, "s1.tif"))
      writeFileSync(join(folder, "metadata.jsonl"), `${JSON.stringify({ file_name: "s1.tif", text: "wetland" })}\n`)
      const report = yield* datasets.inspect(folder, { followSymlinks: true })
      expect(report.problems).toEqual([])
      expect(report.files).toEqual([expect.objectContaining({ file: "s1.tif", width: 268, height: 217, sampleType: "float32", noData: -99, nonFinite: 0 })])
      expect(report.values!.min).toBe(Math.fround(golden.db.min))
      expect(report.values!.max).toBe(Math.fround(golden.db.max))
      expect(report.values!.mean).toBeCloseTo(golden.db.mean, 6)
      expect(report.unitHint).toEqual({ unit: "db", why: "negative values: decibels" })
    }).pipe(Effect.provide(layer)))

  it.effect("every kind of problem is listed with its file", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const io = yield* ImageIO
      const folder = scratch()
      const lines = [
        { file_name: "ok.png", text: "fine", conditioning_file_name: "labels/missing.png" },
        { file_name: "blank.png", text: "" },
        { file_name: "empty.tif", text: "empty" },
        { file_name: "nan.tif", text: "has NaN" },
        { file_name: "nan-nodata.tif", text: "NaN is its no-data value" },
        { file_name: "ghost.tif", text: "not there" }
      ].map((l) => JSON.stringify(l))
      writeFileSync(join(folder, "metadata.jsonl"), [...lines, "[1, 2]", ""].join("\n"))
      const ramp = { width: 8, height: 8, channels: 1, data: Float32Array.from({ length: 64 }, (_, i) => i) }
      yield* io.writePng8(join(folder, "ok.png"), ramp)
      yield* io.writePng8(join(folder, "blank.png"), ramp)
      yield* io.writePng8(join(folder, "unlisted.png"), ramp)
      writeFileSync(join(folder, "empty.tif"), "")
      const withNaN = { ...ramp, data: Float32Array.from(ramp.data, (v) => (v % 10 === 0 ? Number.NaN : v)) }
      yield* io.writeFloatTiff(join(folder, "nan.tif"), withNaN)
      yield* io.writeFloatTiff(join(folder, "nan-nodata.tif"), withNaN, { noData: Number.NaN })
      mkdirSync(join(folder, "labels"))
      const report = yield* datasets.inspect(folder)
      expect(report.problems.map((p) => [p.file, p.kind])).toEqual([
        ["metadata.jsonl line 7", "metadata"],
        ["blank.png", "missing-caption"],
        ["empty.tif", "empty"],
        ["nan.tif", "non-finite"],
        ["ghost.tif", "unreadable"],
        ["labels/missing.png", "unreadable"],
        ["unlisted.png", "missing-caption"]
      ])
      expect(report.problems.find((p) => p.file === "nan.tif")!.reason).toBe("7 NaN or infinite pixels (not the file's no-data value)")
      expect(report.problems.find((p) => p.file === "labels/missing.png")!.reason).toBe("referenced on line 1: cannot read: no such file")
      expect(report).toMatchObject({ images: 6, readable: 4, nonFinitePixels: 7, captionCoverage: 5 / 6 })
      const text = inspectionText(report)
      expect(text).toContain("problems      7")
      expect(text).toContain("  empty.tif  [empty]  empty file (0 bytes)")
    }).pipe(Effect.provide(layer)))

  it.effect("an image over the pixel limit and a link leading outside the folder are problems; the options change both", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const io = yield* ImageIO
      const folder = scratch()
      const outside = scratch()
      const ramp = { width: 8, height: 8, channels: 1, data: Float32Array.from({ length: 64 }, (_, i) => i) }
      yield* io.writePng8(join(folder, "ok.png"), ramp)
      yield* io.writePng8(join(outside, "elsewhere.png"), ramp)
      writeFileSync(join(folder, "zeros.png"), pngOfZeros(30000, 30000))
      symlinkSync(join(outside, "elsewhere.png"), join(folder, "link.png"))
      writeFileSync(join(folder, "metadata.jsonl"), ["ok.png", "zeros.png", "link.png"].map((f) => JSON.stringify({ file_name: f, text: f })).join("\n"))
      const report = yield* datasets.inspect(folder)
      expect(report.problems.map((p) => [p.file, p.kind])).toEqual([["zeros.png", "too-large"], ["link.png", "outside-folder"]])
      // The header still tells what the refused file is.
      expect(report.files[1]).toMatchObject({ file: "zeros.png", format: "png", width: 30000, height: 30000, bands: 1, sampleType: "uint8" })
      expect(report).toMatchObject({ images: 3, readable: 1, sizes: { "8×8": 1 } })
      expect(inspectionText(report)).toContain(
        "  zeros.png  [too-large]  too large: 30000 × 30000 pixels in a file of 877 KB is over the pixel limit of 268435456 (16384 × 16384)"
      )
      expect(inspectionText(report)).toContain(`  link.png  [outside-folder]  a symbolic link to ${join(outside, "elsewhere.png")}, outside the dataset folder`)
      const lenient = yield* datasets.inspect(folder, { maxPixels: 64, followSymlinks: true })
      expect(lenient.problems.map((p) => [p.file, p.kind])).toEqual([["zeros.png", "too-large"]])
      expect(lenient.readable).toBe(2)
      const stricter = yield* datasets.inspect(folder, { maxPixels: 63 })
      expect(stricter.problems.map((p) => [p.file, p.kind])).toEqual([["ok.png", "too-large"], ["zeros.png", "too-large"], ["link.png", "outside-folder"]])
    }).pipe(Effect.provide(layer)))

  it.effect("a folder without metadata.jsonl: its images, and the missing captions as a problem", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const io = yield* ImageIO
      const folder = scratch()
      yield* io.writePng16(join(folder, "a.png"), { width: 4, height: 4, channels: 1, data: new Float32Array(16).fill(1000) })
      const report = yield* datasets.inspect(folder)
      expect(report).toMatchObject({ images: 1, readable: 1, sampleTypes: { uint16: 1 }, captionCoverage: 0, metadata: { present: false } })
      expect(report.problems).toEqual([{ file: "metadata.jsonl", kind: "missing-metadata", reason: "no metadata.jsonl: the images have no captions" }])
      expect(report.unitHint.unit).toBe("amplitude")
    }).pipe(Effect.provide(layer)))
})
