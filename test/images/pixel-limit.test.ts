import { assert, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { sniffFormat } from "../../adapters/images/file-signature.ts"
import { bytesSource, readImageHeader } from "../../adapters/images/image-header.ts"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { pngOfZeros, tiffOfZeros } from "../support/decompression-bombs.ts"

/*
 * The pixel limit: every format's size comes from its header, and an image over the limit is
 * refused before a decoder allocates anything. Files: the reference libraries' fixtures and
 * small files declaring huge images (test/support/decompression-bombs.ts).
 */

const fixtures = "test/fixtures/images"
const expected: Record<string, { width: number; height: number; bands: number }> = JSON.parse(
  readFileSync(join(fixtures, "expected.json"), "utf8")
)
const dir = mkdtempSync(join(tmpdir(), "sardine-pixel-limit-"))
const write = (name: string, bytes: Uint8Array) => {
  const file = join(dir, name)
  writeFileSync(file, bytes)
  return file
}

/** A real JPEG whose frame header is rewritten to claim another size: its scan still holds 7 × 5 pixels. */
const jpegClaiming = (width: number, height: number) => {
  const bytes = Buffer.from(readFileSync(join(fixtures, "grey.jpg")))
  let at = 2
  while (!(bytes[at + 1]! >= 0xc0 && bytes[at + 1]! <= 0xc3)) at += 2 + bytes.readUInt16BE(at + 2)
  bytes.writeUInt16BE(height, at + 5)
  bytes.writeUInt16BE(width, at + 7)
  return bytes
}

const readFailure = (file: string, options?: { maxPixels?: number; band?: number }) =>
  Effect.gen(function*() {
    const io = yield* ImageIO
    return yield* Effect.flip(io.read(file, options))
  })

describe("pixel limit", () => {
  it("each format's header gives the size the reference libraries read (PNG, JPEG, TIFF, BigTIFF, both byte orders)", async () => {
    for (const [name, want] of Object.entries(expected)) {
      const bytes = readFileSync(join(fixtures, name))
      const { width, height, bands, tile } = await readImageHeader(sniffFormat(bytes)!, bytesSource(bytes))
      expect({ width, height, bands }, name).toEqual({ width: want.width, height: want.height, bands: want.bands })
      // tifffile wrote the tiled fixture in 16 × 16 tiles.
      expect(tile, name).toEqual(name === "float32-tiled.tif" ? { width: 16, height: 16 } : undefined)
    }
  })

  describe("a small file declaring a huge image is refused by default, naming its size and the file's", () => {
    const cases: Array<[string, () => string, string]> = [
      ["PNG of 30000 × 30000 zeros (877 KB)", () => write("zeros.png", pngOfZeros(30000, 30000)), "30000 × 30000 pixels in a file of 877 KB"],
      ["deflated TIFF of 30000 × 30000 zeros", () => write("zeros.tif", tiffOfZeros(30000, 30000)), "30000 × 30000 pixels in a file of 877 KB"],
      ["JPEG whose frame header claims 60000 × 60000", () => write("claims.jpg", jpegClaiming(60000, 60000)), "60000 × 60000 pixels in a file of 355 B"]
    ]
    for (const [label, file, size] of cases) {
      it.effect(label, () =>
        Effect.gen(function*() {
          const path = file()
          const error = yield* readFailure(path)
          expect(error.kind).toBe("too-large")
          expect(error.message).toContain(`${path}: too large: ${size} is over the pixel limit of 268435456 (16384 × 16384)`)
          expect(error.message).toContain("raise maxPixels")
        }).pipe(Effect.provide(ImageIOLive)))
    }
  })

  it.effect("the check comes before decoding: an image with corrupt pixel data over the limit is refused as too large", () =>
    Effect.gen(function*() {
      const bytes = pngOfZeros(3000, 3000)
      bytes[bytes.length - 100]! ^= 0xff // inside IDAT: its checksum no longer matches
      const damaged = write("damaged.png", bytes)
      expect((yield* readFailure(damaged, { maxPixels: 3000 * 3000 })).kind).toBe("corrupt")
      expect((yield* readFailure(damaged, { maxPixels: 3000 * 3000 - 1 })).kind).toBe("too-large")
    }).pipe(Effect.provide(ImageIOLive)))

  it.effect("the limit is the reader's: exactly at it reads, one pixel below it is refused, for every format", () =>
    Effect.gen(function*() {
      const io = yield* ImageIO
      for (const name of ["grey8.png", "rgb.jpg", "float32.tif", "float32-bigtiff.tif", "float32-tiled.tif"]) {
        const shape = expected[name]
        assert.isDefined(shape, name)
        const { width, height } = shape
        const file = join(fixtures, name)
        expect((yield* io.read(file, { maxPixels: width * height })).width, name).toBe(width)
        const error = yield* readFailure(file, { maxPixels: width * height - 1 })
        expect(error.kind, name).toBe("too-large")
        expect(error.reason, name).toContain(`${width} × ${height} pixels`)
      }
    }).pipe(Effect.provide(ImageIOLive)))

  it.effect("a TIFF's bands count: 100 × 100 × 300 bands is over 4 × a limit of 10000, one band of it is not", () =>
    Effect.gen(function*() {
      const io = yield* ImageIO
      const file = write("many-bands.tif", tiffOfZeros(100, 100, { bands: 300 }))
      const error = yield* readFailure(file, { maxPixels: 100 * 100 })
      expect(error.kind).toBe("too-large")
      expect(error.reason).toContain("100 × 100 pixels × 300 bands")
      const band = yield* io.read(file, { maxPixels: 100 * 100, band: 299 })
      expect([band.width, band.height, band.channels]).toEqual([100, 100, 1])
    }).pipe(Effect.provide(ImageIOLive)))

  it.effect("a TIFF's tiles count: a 16 × 16 image in one tile of 40000 × 40000 is refused, as every tile is decoded whole", () =>
    Effect.gen(function*() {
      const file = write("huge-tile.tif", tiffOfZeros(16, 16, { tile: 40000 }))
      const error = yield* readFailure(file)
      expect(error.kind).toBe("too-large")
      expect(error.reason).toMatch(/^too large: 16 × 16 pixels in tiles of 40000 × 40000 in a file of 1\.6 MB is over the pixel limit of 268435456/)
      // The same builder's small tiles read: the file is a valid tiled TIFF.
      const io = yield* ImageIO
      const small = yield* io.read(write("small-tile.tif", tiffOfZeros(16, 16, { tile: 32 })))
      expect([small.width, small.height, Math.max(...small.data)]).toEqual([16, 16, 0])
    }).pipe(Effect.provide(ImageIOLive)))

  it.effect("info reads the header of a file over the limit without decoding it", () =>
    Effect.gen(function*() {
      const io = yield* ImageIO
      const info = yield* io.info(write("info.png", pngOfZeros(30000, 30000)))
      expect(info).toEqual({ format: "png", width: 30000, height: 30000, bands: 1, sampleType: "uint8" })
    }).pipe(Effect.provide(ImageIOLive)))
})
