import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { ImageIO, type Raster } from "../../framework/services/image-io.ts"
import { toAmplitude } from "../../framework/sar/units.ts"
import { realScene } from "../support/real-scene.ts"

/** Written by tools/make_image_fixtures.py: files from Pillow/tifffile and what those libraries read back. */
const fixtures = "test/fixtures/images"
const expected: Record<string, {
  format: string
  width: number
  height: number
  bands: number
  channels: number
  sampleType: string
  noData?: number
  data: Array<number>
}> = JSON.parse(readFileSync(join(fixtures, "expected.json"), "utf8"))

/** Written by tools/make_sar_golden.py from tifffile + numpy. */
const scene = realScene
const golden = JSON.parse(readFileSync("test/fixtures/data/s1-grd-golden.json", "utf8"))

const scratch = () => mkdtempSync(join(tmpdir(), "sardine-images-"))

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let worst = 0
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!))
  return worst
}

const raster = (width: number, height: number, channels: number, f: (i: number) => number): Raster => ({
  width,
  height,
  channels,
  data: Float32Array.from({ length: width * height * channels }, (_, i) => f(i))
})

const readError = (file: string) =>
  Effect.gen(function*() {
    const io = yield* ImageIO
    return yield* Effect.flip(io.read(file))
  })

describe("ImageIO (sharp + geotiff)", () => {
  describe("decodes what the reference libraries wrote, to the values they read back", () => {
    for (const [name, want] of Object.entries(expected)) {
      it.effect(name, () =>
        Effect.gen(function*() {
          const io = yield* ImageIO
          const file = join(fixtures, name)
          const got = yield* io.read(file)
          expect([got.width, got.height, got.channels]).toEqual([want.width, want.height, want.channels])
          // complex samples: numpy's |z| is computed in float32, sardine's in float64 then rounded
          const tolerance = want.sampleType === "complex64" ? 1e-6 * Math.max(...want.data) : 0
          expect(maxAbsDiff(got.data, Float32Array.from(want.data))).toBeLessThanOrEqual(tolerance)
          const info = yield* io.info(file)
          expect(info).toEqual({
            format: want.format,
            width: want.width,
            height: want.height,
            bands: want.bands,
            sampleType: want.sampleType,
            ...(want.noData !== undefined ? { noData: want.noData } : {})
          })
        }).pipe(Effect.provide(ImageIOLive)))
    }
  })

  it.effect("reads the real Sentinel-1 scene: 268 × 217 float32 dB, no-data tag, converts to amplitude", () =>
    Effect.gen(function*() {
      const io = yield* ImageIO
      const info = yield* io.info(scene)
      expect(info).toEqual({ format: "tiff", width: 268, height: 217, bands: 1, sampleType: "float32", noData: -99 })
      const db = yield* io.read(scene)
      expect([db.width, db.height, db.channels, db.noData]).toEqual([268, 217, 1, -99])
      let min = Infinity, max = -Infinity, sum = 0
      for (const v of db.data) {
        min = Math.min(min, v)
        max = Math.max(max, v)
        sum += v
      }
      expect(min).toBe(Math.fround(golden.db.min))
      expect(max).toBe(Math.fround(golden.db.max))
      expect(min).toBeCloseTo(-26.7, 1)
      expect(max).toBeCloseTo(1.4, 1)
      expect(sum / db.data.length).toBeCloseTo(golden.db.mean, 6)
      golden.pixelPositions.forEach(([r, c]: [number, number], k: number) => {
        expect(db.data[r * db.width + c]).toBe(Math.fround(golden.db.pixels[k]))
      })
      const amplitude = toAmplitude(db.data, "db")
      golden.pixelPositions.forEach(([r, c]: [number, number], k: number) => {
        expect(amplitude[r * db.width + c]).toBeCloseTo(golden.amplitude.pixels[k], 6)
      })
    }).pipe(Effect.provide(ImageIOLive)))

  it.effect("chooses one band of a multi-band file, contiguous or planar", () =>
    Effect.gen(function*() {
      const io = yield* ImageIO
      for (const name of ["float32-3band.tif", "float32-3band-planar.tif", "rgb8.png"]) {
        const want = expected[name]!
        const band = yield* io.read(join(fixtures, name), { band: 2 })
        expect(band.channels).toBe(1)
        expect(Array.from(band.data)).toEqual(want.data.filter((_, i) => i % 3 === 2).map(Math.fround))
      }
      const error = yield* Effect.flip(io.read(join(fixtures, "float32.tif"), { band: 1 }))
      expect(error.kind).toBe("band-out-of-range")
      expect(error.message).toBe(`${join(fixtures, "float32.tif")}: band 1 requested but the file has 1 band (numbered from 0)`)
    }).pipe(Effect.provide(ImageIOLive)))

  describe("round trips", () => {
    it.effect("8-bit PNG, grey / grey+alpha / RGB / RGBA, clamped and rounded", () =>
      Effect.gen(function*() {
        const io = yield* ImageIO
        const dir = scratch()
        for (const channels of [1, 2, 3, 4]) {
          const file = join(dir, `c${channels}.png`)
          const r = raster(9, 4, channels, (i) => (i * 7.3) % 255)
          yield* io.writePng8(file, r)
          const back = yield* io.read(file)
          expect(back.channels).toBe(channels)
          expect(Array.from(back.data)).toEqual(Array.from(r.data, Math.round))
          expect((yield* io.info(file)).sampleType).toBe("uint8")
        }
        const file = join(dir, "clamped.png")
        yield* io.writePng8(file, { width: 4, height: 1, channels: 1, data: Float32Array.of(-5, 254.6, 300, Number.NaN) })
        expect(Array.from((yield* io.read(file)).data)).toEqual([0, 255, 255, 0])
      }).pipe(Effect.provide(ImageIOLive)))

    it.effect("16-bit PNG keeps all 16 bits", () =>
      Effect.gen(function*() {
        const io = yield* ImageIO
        const dir = scratch()
        for (const channels of [1, 3]) {
          const file = join(dir, `c${channels}.png`)
          const r = raster(5, 7, channels, (i) => (i * 1237 + 1) % 65536)
          yield* io.writePng16(file, r)
          const back = yield* io.read(file)
          expect(back.channels).toBe(channels)
          expect(Array.from(back.data)).toEqual(Array.from(r.data))
          expect((yield* io.info(file)).sampleType).toBe("uint16")
        }
      }).pipe(Effect.provide(ImageIOLive)))

    it.effect("float32 TIFF keeps every value (negative, tiny, NaN) and the no-data tag", () =>
      Effect.gen(function*() {
        const io = yield* ImageIO
        const dir = scratch()
        for (const channels of [1, 2, 3]) {
          const file = join(dir, `c${channels}.tif`)
          const r = raster(6, 5, channels, (i) => (i % 7 === 0 ? Number.NaN : (i - 40) * 1.37e-3))
          yield* io.writeFloatTiff(file, r, { noData: -99 })
          const back = yield* io.read(file)
          expect([back.width, back.height, back.channels]).toEqual([6, 5, channels])
          expect(Array.from(back.data)).toEqual(Array.from(r.data))
          expect(yield* io.info(file)).toEqual({ format: "tiff", width: 6, height: 5, bands: channels, sampleType: "float32", noData: -99 })
        }
        // The real scene survives a write/read cycle bit for bit.
        const db = yield* io.read(scene)
        yield* io.writeFloatTiff(join(dir, "scene.tif"), db)
        expect((yield* io.read(join(dir, "scene.tif"))).data).toEqual(db.data)
      }).pipe(Effect.provide(ImageIOLive)))

    it.effect("writes are atomic: no temporary file is left, a failed write leaves nothing", () =>
      Effect.gen(function*() {
        const io = yield* ImageIO
        const dir = scratch()
        yield* io.writePng8(join(dir, "nested", "a.png"), raster(3, 3, 1, (i) => i))
        yield* io.writePng8(join(dir, "nested", "a.png"), raster(3, 3, 1, (i) => 2 * i))
        expect(readdirSync(join(dir, "nested"))).toEqual(["a.png"])
        expect(Array.from((yield* io.read(join(dir, "nested", "a.png"))).data)).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16])
        const error = yield* Effect.flip(io.writePng8(join(dir, "bad.png"), raster(3, 3, 5, () => 0)))
        expect(error._tag).toBe("ImageWriteError")
        expect(error.message).toContain("bad.png")
        // The target exists as a folder: the rename fails and the temporary file is removed.
        const blocked = join(dir, "nested")
        yield* Effect.flip(io.writeFloatTiff(blocked, raster(2, 2, 1, () => 1)))
        expect(readdirSync(dir).sort()).toEqual(["nested"])
        expect(readdirSync(join(dir, "nested"))).toEqual(["a.png"])
      }).pipe(Effect.provide(ImageIOLive)))
  })

  describe("each kind of bad file has its own error naming the file", () => {
    const dir = scratch()
    const good = (name: string) => readFileSync(join(fixtures, name))
    const make = (name: string, bytes: Uint8Array) => {
      const file = join(dir, name)
      writeFileSync(file, bytes)
      return file
    }
    const cases: Array<[string, () => string, string, RegExp]> = [
      ["missing", () => join(dir, "nowhere.png"), "unreadable", /: cannot read: no such file$/],
      ["empty", () => make("empty.tif", new Uint8Array(0)), "empty", /: empty file \(0 bytes\)$/],
      ["a folder", () => dir, "unreadable", /: cannot read: is a directory$/],
      [
        "a FIFO named like an image (opening it would wait forever)",
        () => {
          const fifo = join(dir, "pipe.png")
          execFileSync("mkfifo", [fifo])
          return fifo
        },
        "unreadable",
        /: cannot read: not a regular file \(a pipe, socket or device\)$/
      ],
      [
        "text",
        () => make("notes.png", new TextEncoder().encode("these are not pixels")),
        "unsupported",
        /: unsupported format: unknown \(first bytes 74 68 65 73 65 20 61 72\); sardine reads PNG, JPEG and TIFF$/
      ],
      ["GIF", () => make("anim.gif", new TextEncoder().encode("GIF89a\u0001\u0000\u0001\u0000")), "unsupported", /: unsupported format: GIF;/],
      ["1-bit TIFF", () => join(fixtures, "bilevel.tif"), "unsupported", /: unsupported TIFF sample type: 1-bit unsigned integer$/],
      ["unknown TIFF compression", () => join(fixtures, "unsupported-compression.tif"), "unsupported", /: unsupported TIFF compression \(code 34712\)$/],
      ["truncated PNG", () => make("cut.png", good("rgb8.png").subarray(0, 60)), "truncated", /: truncated: the PNG file has no IEND chunk \(60 bytes\)$/],
      [
        "truncated JPEG",
        () => make("cut.jpg", good("rgb.jpg").subarray(0, 400)),
        "truncated",
        /: truncated: the JPEG file has no end-of-image marker \(400 bytes\)$/
      ],
      [
        "truncated TIFF pixels",
        () => make("cut.tif", good("float32.tif").subarray(0, 300)),
        "truncated",
        /: truncated: pixel data runs to byte 396 but the file has only 300 bytes$/
      ],
      [
        "truncated TIFF header",
        () => make("stub.tif", good("float32.tif").subarray(0, 6)),
        "truncated",
        /: truncated: the file ends inside the 8-byte TIFF header \(6 bytes\)$/
      ],
      [
        "corrupt PNG (bad checksum)",
        () => {
          const bytes = new Uint8Array(good("rgb8.png"))
          bytes[bytes.length - 20]! ^= 0xff // inside the IDAT data: its CRC no longer matches
          return make("flipped.png", bytes)
        },
        "corrupt",
        /: corrupt PNG: /
      ],
      [
        "corrupt TIFF (directory points nowhere sensible)",
        () => {
          const bytes = new Uint8Array(good("float32.tif"))
          new DataView(bytes.buffer).setUint32(4, 3, true) // first IFD at byte 3: inside the header
          return make("garbled.tif", bytes)
        },
        "corrupt",
        /: corrupt TIFF/
      ],
      [
        "TIFF with an empty BitsPerSample",
        () => {
          const bytes = new Uint8Array(good("float32.tif"))
          const view = new DataView(bytes.buffer)
          const directory = view.getUint32(4, true) // little-endian: the fixture starts with "II"
          for (let i = 0; i < view.getUint16(directory, true); i++) {
            const entry = directory + 2 + 12 * i
            if (view.getUint16(entry, true) === 258) view.setUint32(entry + 4, 0, true) // BitsPerSample: 0 values
          }
          return make("no-bits.tif", bytes)
        },
        "corrupt",
        /: corrupt TIFF: an empty SampleFormat or BitsPerSample$/
      ]
    ]
    for (const [label, file, kind, reason] of cases) {
      it.effect(label, () =>
        Effect.gen(function*() {
          const path = file()
          const error = yield* readError(path)
          expect(error._tag).toBe("ImageDecodeError")
          expect(error.file).toBe(path)
          expect(error.kind).toBe(kind)
          expect(error.message.startsWith(`${path}: `)).toBe(true)
          expect(error.message).toMatch(reason)
        }).pipe(Effect.provide(ImageIOLive)))
    }
  })
})
