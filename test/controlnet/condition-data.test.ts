import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatasetsLive } from "../../adapters/data/datasets-live.ts"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { imageFolder, synthetic } from "../../framework/declaration/dataset.ts"
import { normalise } from "../../framework/sar/normalisation.ts"
import { type ConditionRequest, Datasets } from "../../framework/services/datasets.ts"
import { ImageIO, type Raster } from "../../framework/services/image-io.ts"
import { preparedDatasetWriter, readPreparedCondition, readPreparedIndex } from "../../framework/steps/prepared-dataset.ts"

/**
 * Conditioning images read with their SAR image (real files, the real decoders): label maps one-hot by
 * their declared classes, optical images scaled to [0, 1], another SAR image through the dataset's
 * normalisation — each cut and flipped as its sample — and what is wrong with them named per file.
 */

const layer = DatasetsLive.pipe(Layer.provideMerge(ImageIOLive))

const raster = (width: number, height: number, channels: number, f: (x: number, y: number, c: number) => number): Raster => ({
  width,
  height,
  channels,
  data: Float32Array.from({ length: width * height * channels }, (_, i) => {
    const p = Math.floor(i / channels)
    return f(p % width, Math.floor(p / width), i % channels)
  })
})

/** WorldCover-like label values: not contiguous. */
const classes = [10, 20, 50]
const labelAt = (x: number, y: number) => classes[(x + 2 * y) % 3]!

const pairedFolder = (lines: ReadonlyArray<object>) =>
  Effect.gen(function*() {
    const io = yield* ImageIO
    const folder = mkdtempSync(join(tmpdir(), "sardine-conditions-"))
    writeFileSync(join(folder, "metadata.jsonl"), `${lines.map((l) => JSON.stringify(l)).join("\n")}\n`)
    mkdirSync(join(folder, "labels"))
    yield* io.writePng8(join(folder, "sar.png"), raster(24, 20, 1, (x, y) => 20 + ((x * 5 + y * 3) % 200)))
    yield* io.writePng8(join(folder, "labels", "good.png"), raster(24, 20, 1, labelAt))
    yield* io.writePng8(join(folder, "labels", "stray.png"), raster(24, 20, 1, (x, y) => (x === 3 && y === 4 ? 40 : labelAt(x, y))))
    yield* io.writePng8(join(folder, "labels", "small.png"), raster(12, 10, 1, labelAt))
    yield* io.writePng8(join(folder, "optical.png"), raster(24, 20, 4, (x, y, c) => (c === 3 ? 255 : (x * 9 + y * 4 + c * 60) % 256)))
    yield* io.writePng16(join(folder, "tsx.png"), raster(24, 20, 1, (x, y) => 100 + x * y * 7))
    return folder
  })

const declared = (folder: string, seed: number) =>
  imageFolder(folder, { unit: "amplitude", seed, onError: "skip", resolution: { size: 16, mode: "random-crop", flip: "both" } })

describe("conditioning images of an image folder", () => {
  it.effect("label maps one-hot by their classes, optical scaled to [0, 1], another SAR normalised, each cut and flipped with its sample", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const io = yield* ImageIO
      const folder = yield* pairedFolder([
        { file_name: "sar.png", text: "a scene", conditioning_file_name: "labels/good.png", optical_file_name: "optical.png", tsx_file_name: "tsx.png" }
      ])
      const requests: ReadonlyArray<ConditionRequest> = [
        { input: "label-map", column: "conditioning_file_name", classValues: classes },
        { input: "optical", column: "optical_file_name" },
        { input: "sar", column: "tsx_file_name" }
      ]
      const tsx = yield* io.read(join(folder, "tsx.png"))
      const tsxNormalised = normalise(tsx.data, { _tag: "mean-std", k: 3, statistics: "per-image" })
      for (const seed of [1, 2, 3]) {
        for (const condition of requests) {
          const { samples, skipped } = yield* datasets.load(declared(folder, seed), { condition })
          expect(skipped).toEqual([])
          const [sample] = samples
          assert.isDefined(sample)
          const { window, conditioning } = sample
          const c = conditioning!
          const channels = { "label-map": 3, optical: 3, sar: 1 }[condition.input]
          expect([c.width, c.height, c.channels]).toEqual([16, 16, channels])
          for (let row = 0; row < 16; row++) {
            for (let col = 0; col < 16; col++) {
              const x = window.x + (window.flipHorizontal ? 15 - col : col)
              const y = window.y + (window.flipVertical ? 15 - row : row)
              const got = Array.from(c.data.subarray((row * 16 + col) * channels, (row * 16 + col + 1) * channels))
              const expected = condition.input === "label-map"
                ? classes.map((v) => (v === labelAt(x, y) ? 1 : 0))
                : condition.input === "optical"
                ? [0, 1, 2].map((k) => Math.fround(((x * 9 + y * 4 + k * 60) % 256) / 255))
                : [tsxNormalised[y * 24 + x]]
              expect(got, `${condition.input} at ${col}, ${row}`).toEqual(expected)
            }
          }
        }
      }
    }).pipe(Effect.provide(layer)))

  it.effect("a label outside the classes, a line without the column and a map of another size are each named; a missing column fails the dataset", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const folder = yield* pairedFolder([
        { file_name: "sar.png", text: "good", conditioning_file_name: "labels/good.png" },
        { file_name: "sar.png", text: "stray", conditioning_file_name: "labels/stray.png" },
        { file_name: "sar.png", text: "unpaired" },
        { file_name: "sar.png", text: "small", conditioning_file_name: "labels/small.png" }
      ].map((line, i) => (i === 0 ? line : { ...line, file_name: `copy-${i}.png` })))
      const io = yield* ImageIO
      for (const i of [1, 2, 3]) yield* io.writePng8(join(folder, `copy-${i}.png`), yield* io.read(join(folder, "sar.png")))
      const tiles = imageFolder(folder, { unit: "amplitude", onError: "skip", resolution: { size: 20, mode: "tile" } })
      const condition = { input: "label-map", column: "conditioning_file_name", classValues: classes } as const
      const { samples, skipped } = yield* datasets.load(tiles, { condition })
      expect(samples.map((s) => s.caption)).toEqual(["good"])
      expect(skipped.map((s) => [s.file.slice(folder.length + 1), s.kind, s.reason])).toEqual([
        [
          "labels/stray.png",
          "conditioning",
          "conditioning image: label value 40 at row 4, column 3 is not one of the declared classes (10, 20, 50) (in the window at 0, 0)"
        ],
        ["copy-2.png", "conditioning", "metadata line 3 names no conditioning_file_name"],
        ["labels/small.png", "conditioning", "conditioning image: 12 × 10, the image is 24 × 20"]
      ])
      const missing = yield* Effect.flip(datasets.load(tiles, { condition: { input: "optical", column: "optical_file_name" } }))
      expect(missing.message).toBe(
        `${
          join(folder, "metadata.jsonl")
        }: has no column optical_file_name naming conditioning images (conditioning.from); its columns: file_name, text, conditioning_file_name`
      )
    }).pipe(Effect.provide(layer)))
})

describe("synthetic optical conditions", () => {
  it.effect("are the 8-bit images the scenes' PNGs hold: a rendering past 255 (scene 215 of seed 1 at 32 px) is clipped, every value k/255", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const { samples } = yield* datasets.load(synthetic({ n: 216, size: 32, seed: 1 }), { condition: { input: "optical", column: "optical_file_name" } })
      const values = samples.flatMap((s) => Array.from(s.conditioning!.data))
      expect(values.every((v) => v >= 0 && v <= 1 && Math.abs(v * 255 - Math.round(v * 255)) < 1e-4)).toBe(true)
      expect(Math.max(...samples[215]!.conditioning!.data)).toBe(1)
    }).pipe(Effect.provide(layer)))
})

describe("prepared conditioning images", () => {
  it.effect("are written next to the samples with the classes recorded; a sample without one is refused", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const dataset = synthetic({ n: 3, size: 16, seed: 4 })
      const condition = { input: "optical", column: "optical_file_name" } as const
      const { samples } = yield* datasets.load(dataset, { condition })
      const dir = mkdtempSync(join(tmpdir(), "sardine-prepared-"))
      const writer = yield* preparedDatasetWriter(dir, condition)
      for (const sample of samples) yield* writer.add(sample)
      yield* writer.finish
      const index = yield* readPreparedIndex(dir)
      expect(index.conditioning).toEqual({ input: "optical", column: "optical_file_name", channels: 3 })
      for (const [i, sample] of index.samples.entries()) {
        expect(Array.from(yield* readPreparedCondition(dir, sample))).toEqual(Array.from(samples[i]!.conditioning!.data))
      }
      const labels = { input: "label-map", column: "conditioning_file_name", classes: { 1: "water", 2: "bare-field" } } as const
      const strict = yield* preparedDatasetWriter(mkdtempSync(join(tmpdir(), "sardine-prepared-")), labels)
      const { samples: plain } = yield* datasets.load(dataset)
      const refused = yield* Effect.flip(strict.add(plain[0]!))
      expect(refused.message).toBe("synthetic:4/0: has no conditioning image of its size (conditioning_file_name)")
    }).pipe(Effect.provide(layer)))
})
