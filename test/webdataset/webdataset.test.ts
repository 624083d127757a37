import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, truncateSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatasetsLive } from "../../adapters/data/datasets-live.ts"
import { decodeMember } from "../../adapters/data/webdataset-members.ts"
import { shardSamples } from "../../adapters/data/webdataset-samples.ts"
import { tarMembers } from "../../adapters/data/webdataset-tar.ts"
import { expandBraces, listShards } from "../../adapters/data/webdataset-shards.ts"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { DatasetDeclarationError, meanStd, sarlo80, webDataset } from "../../framework/declaration/dataset.ts"
import { combineMoments, emptyMoments, meanStdOf, momentsOf, normalise, toTrainingRange } from "../../framework/sar/normalisation.ts"
import { Datasets } from "../../framework/services/datasets.ts"
import { defaultMaxPixels } from "../../framework/services/image-io.ts"
import { sardine } from "../support/run-process.ts"
import { npyBytes, writeShard } from "./shard-builder.ts"

const layer = DatasetsLive.pipe(Layer.provideMerge(ImageIOLive))
const FIXTURES = "test/fixtures/webdataset"
const SPLIT = `${FIXTURES}/sarlo80/train`

/** What numpy and Pillow read back from the fixture shards (tools/make_webdataset_fixtures.py). */
interface ExpectedSample {
  readonly shard: string
  readonly key: string
  readonly captions: { readonly SHORT: string; readonly MID: string; readonly LONG: string }
  readonly dtype: string
  readonly fortranOrder: boolean
  readonly amplitude: ReadonlyArray<number>
  readonly png: ReadonlyArray<number>
}
const expected = JSON.parse(readFileSync(`${FIXTURES}/expected.json`, "utf8")) as { readonly side: number; readonly samples: ReadonlyArray<ExpectedSample> }
const side = expected.side

const collect = async <A>(items: AsyncIterable<A>) => {
  const out: Array<A> = []
  for await (const item of items) out.push(item)
  return out
}

const maxRelativeError = (actual: ArrayLike<number>, reference: ArrayLike<number>) => {
  let worst = 0
  let scale = 0
  for (let i = 0; i < reference.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i]! - reference[i]!))
    scale = Math.max(scale, Math.abs(reference[i]!))
  }
  return worst / scale
}

describe("WebDataset members read as numpy and Pillow wrote them", () => {
  it("every .npy (complex64, Fortran order, complex128) gives numpy's |z|; every .sar.png Pillow's values", async () => {
    expect(new Set(expected.samples.map((s) => s.dtype))).toEqual(new Set(["complex64", "complex128"]))
    expect(expected.samples.some((s) => s.fortranOrder)).toBe(true)
    for (const sample of expected.samples) {
      const items = await collect(shardSamples(join(SPLIT, sample.shard), () => true))
      const found = items.find((i) => i._tag === "Sample" && i.sample.key === sample.key)
      if (found?._tag !== "Sample") throw new Error(`no sample ${sample.key}`)
      // Members the reader holds, in their archive order; the SICD XML is a member like the others.
      expect([...found.sample.members.keys()]).toEqual(["sar.npy", "sar.png", "meta.json", "sicd.xml"])
      const array = await decodeMember("x.sar.npy", found.sample.members.get("sar.npy")!.bytes!, defaultMaxPixels)
      expect([array.width, array.height, array.channels, array.complex]).toEqual([side, side, 1, true])
      // |z| of float32 parts: numpy's float32 hypot and sardine's rounded float64 one agree to an ulp.
      expect(maxRelativeError(array.data, sample.amplitude), sample.key).toBeLessThanOrEqual(2e-7)
      const png = await decodeMember("x.sar.png", found.sample.members.get("sar.png")!.bytes!, defaultMaxPixels)
      expect(Array.from(png.data)).toEqual(sample.png)
    }
  })

  it("member names too long for ustar: pax path records and GNU long names", async () => {
    for (const format of ["pax", "gnu"]) {
      const [item, ...rest] = await collect(shardSamples(`${FIXTURES}/long-names-${format}.tar`, () => true))
      assert.isDefined(item)
      expect(rest).toEqual([])
      if (item._tag !== "Sample") throw new Error(item.problem.reason)
      expect(item.sample.key).toBe(`deep/${"b".repeat(150)}/00000007`)
      expect(new TextDecoder().decode(item.sample.members.get("txt")!.bytes)).toBe(`a caption in a ${format}-named member`)
    }
  })

  it("a pattern's folder that is missing matches nothing; one that cannot be read (a link to itself) is an error naming it", async () => {
    const root = mkdtempSync(join(tmpdir(), "sardine-shard-patterns-"))
    writeFileSync(join(root, "a.tar"), "")
    symlinkSync("loop", join(root, "loop"))
    expect(await listShards(["*.tar", "missing/*.tar"], root)).toEqual({ files: [join(root, "a.tar")], unmatched: ["missing/*.tar"] })
    await expect(listShards(["loop/*.tar"], root)).rejects.toThrow(/ELOOP.*loop/)
  })

  it("brace ranges and alternatives expand as WebDataset's braceexpand does", () => {
    expect(expandBraces("shard-{000..002}.tar")).toEqual(["shard-000.tar", "shard-001.tar", "shard-002.tar"])
    expect(expandBraces("{train,val}/s-{8..10}.tar")).toEqual([
      "train/s-8.tar",
      "train/s-9.tar",
      "train/s-10.tar",
      "val/s-8.tar",
      "val/s-9.tar",
      "val/s-10.tar"
    ])
    expect(expandBraces("plain.tar")).toEqual(["plain.tar"])
  })
})

describe("webDataset / sarlo80 datasets", () => {
  it.effect("sarlo80: every shard below the split, samples in shard order, the complex array as amplitude, MID captions", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const normalisation = meanStd({ k: 3 })
      const { samples, skipped } = yield* datasets.load(sarlo80(SPLIT, { caption: "MID", resolution: { size: side }, normalisation }))
      expect(skipped).toEqual([])
      expect(samples.map((s) => s.id)).toEqual(expected.samples.map((s) => `${SPLIT}/${s.shard}:${s.key}`))
      expect(samples.map((s) => s.caption)).toEqual(expected.samples.map((s) => s.captions.MID))
      samples.forEach((sample, i) => {
        // numpy's |z|, normalised by sardine's per-image A/(mean + 3·std): the reader adds nothing of its own.
        const reference = toTrainingRange(normalise(Float32Array.from(expected.samples[i]!.amplitude), normalisation))
        expect(maxRelativeError(sample.pixels.map((v) => v + 1), reference.map((v) => v + 1)), sample.id).toBeLessThanOrEqual(1e-6)
      })
    }).pipe(Effect.provide(layer)))

  it.effect("the PNG member, LONG captions with a template, a list of patterns with brace ranges and globs", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const dataset = webDataset([`${SPLIT}/chunk_000/shard-{00000..00001}.tar`, `${SPLIT}/chunk_00[1]/*.tar`], {
        image: "sar.png",
        caption: "meta.json#caption.LONG",
        unit: "amplitude",
        captionTemplate: "{token} {caption}",
        resolution: { size: 16, mode: "tile", stride: 8 }
      })
      const { samples } = yield* datasets.load(dataset, { token: "<SAR>" })
      expect(samples).toHaveLength(expected.samples.length * 4)
      expect(samples[0]!.caption).toBe(`<SAR> ${expected.samples[0]!.captions.LONG}`)
      expect(samples.slice(0, 4).map((s) => s.id.split("@")[1])).toEqual(["0,0", "8,0", "0,8", "8,8"])
      expect(samples[0]!.source).toMatch(/shard-00000\.tar:00000000\.sar\.png$/)
    }).pipe(Effect.provide(layer)))

  it.effect("dataset-wide mean and std are taken over every sample of every shard", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const { samples } = yield* datasets.load(
        sarlo80(SPLIT, { caption: "SHORT", resolution: { size: side }, normalisation: meanStd({ statistics: "dataset" }) })
      )
      const moments = expected.samples.reduce((m, s) => combineMoments(m, momentsOf(Float32Array.from(s.amplitude))), emptyMoments)
      const { mean, std } = meanStdOf(moments)
      const first = expected.samples[0]!.amplitude
      const reference = toTrainingRange(normalise(Float32Array.from(first), { _tag: "mean-std", k: 3, statistics: { mean, std } }))
      expect(maxRelativeError(samples[0]!.pixels.map((v) => v + 1), reference.map((v) => v + 1))).toBeLessThanOrEqual(1e-6)
      expect(samples[0]!.caption).toBe(expected.samples[0]!.captions.SHORT)
    }).pipe(Effect.provide(layer)))
})

describe("bad shards and members are named", () => {
  const dir = mkdtempSync(join(tmpdir(), "sardine-webdataset-"))
  const slc = (n: number) => Float32Array.from({ length: 2 * n * n }, (_, i) => ((i * 7919) % 13) / 13 + 0.05)
  const meta = (caption: object) => JSON.stringify({ caption })
  const good = npyBytes("<c8", [16, 16], slc(16))
  const shard = join(dir, "bad/shard-00000.tar")
  writeShard(shard, [
    ["00000000.sar.npy", good],
    ["00000000.meta.json", meta({ MID: "fine" })],
    ["00000001.sar.npy", good.subarray(0, 300)],
    ["00000001.meta.json", meta({ MID: "cut array" })],
    ["00000002.sar.npy", good],
    ["00000002.meta.json", "{ not json"],
    ["00000003.sar.npy", good],
    ["00000003.meta.json", meta({ SHORT: "only short" })],
    ["00000004.meta.json", meta({ MID: "no array" })],
    ["00000005.sar.npy", npyBytes("<f4", [16, 16], Float32Array.from({ length: 256 }, (_, i) => 1 + (i % 5)))],
    ["00000005.meta.json", meta({ MID: "real-valued" })],
    ["00000006.sar.npy", npyBytes("<c8", [4, 4], slc(4))],
    ["00000006.meta.json", meta({ MID: "too small" })]
  ])
  const pngShard = join(dir, "png/shard-00000.tar")
  writeShard(pngShard, [
    ["a.sar.png", new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3])],
    ["a.txt", "cut png"],
    ["b.sar.png", new Uint8Array([0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0, 0, 0, 0, 0, 0])],
    ["b.txt", "a gif"],
    ["c.sar.png", new Uint8Array(0)],
    ["c.txt", "empty"]
  ])
  const truncated = join(dir, "cut/shard-00000.tar")
  mkdirSync(join(dir, "cut"))
  copyFileSync(`${SPLIT}/chunk_000/shard-00000.tar`, truncated)
  // Cut in the middle of the second sample's array.
  const cutAt = (async () => {
    const members = await collect(tarMembers(truncated, () => false, 1 << 30))
    const array = members.find((m) => m.name === "00000001.sar.npy")!
    const at = array.offset + Math.floor(array.size / 2)
    truncateSync(truncated, at)
    return at
  })()
  const garbage = join(dir, "garbage/shard-00000.tar")
  mkdirSync(join(dir, "garbage"))
  writeFileSync(garbage, "this is not a tar archive at all, just text padded out".padEnd(2048, "."))
  const declared = (shards: string, image = "sar.npy") =>
    webDataset(shards, { image, caption: image === "sar.npy" ? "meta.json#caption.MID" : "txt", unit: "amplitude", resolution: { size: 8 }, onError: "skip" })

  it.effect("onError skip: each damaged member or missing part is a skipped item naming shard, member and problem", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const { samples, skipped } = yield* datasets.load(declared(shard))
      expect(samples.map((s) => [s.id.split(":")[1], s.caption])).toEqual([["00000000", "fine"], ["00000005", "real-valued"]])
      expect(skipped.map((s) => [s.file.replace(dir, ""), s.kind])).toEqual([
        ["/bad/shard-00000.tar:00000001.sar.npy", "truncated"],
        ["/bad/shard-00000.tar:00000002.meta.json", "corrupt"],
        ["/bad/shard-00000.tar:00000003.meta.json", "missing-caption"],
        ["/bad/shard-00000.tar:00000004.sar.npy", "missing-member"],
        ["/bad/shard-00000.tar:00000006.sar.npy", "too-small"]
      ])
      expect(skipped[0]!.reason).toMatch(/truncated: 16 × 16 <c8 values need \d+ bytes, the member has 300/)
      expect(skipped[1]!.reason).toMatch(/^not valid JSON/)
      expect(skipped[2]!.reason).toBe("has no caption.MID (caption has SHORT)")
      expect(skipped[3]!.reason).toBe("sample 00000004 has no \"sar.npy\" member (it has meta.json)")
      expect(skipped[4]!.reason).toBe("image 4 × 4 is smaller than the training size 8")
    }).pipe(Effect.provide(layer)))

  it.effect("image members that are cut, not images or empty", () =>
    Effect.gen(function*() {
      const { skipped } = yield* (yield* Datasets).load(declared(pngShard, "sar.png"))
      expect(skipped.map((s) => [s.file.replace(dir, ""), s.kind])).toEqual([
        ["/png/shard-00000.tar:a.sar.png", "truncated"],
        ["/png/shard-00000.tar:b.sar.png", "unsupported"],
        ["/png/shard-00000.tar:c.sar.png", "empty"]
      ])
      expect(skipped[1]!.reason).toMatch(/unsupported format: GIF/)
    }).pipe(Effect.provide(layer)))

  it.effect("a truncated archive: the samples before the cut, then the shard named with where it ends", () =>
    Effect.gen(function*() {
      const at = yield* Effect.promise(() => cutAt)
      const { samples, skipped } = yield* (yield* Datasets).load(declared(truncated))
      expect(samples.map((s) => s.id.split(":")[1])).toEqual(["00000000"])
      expect(skipped).toHaveLength(1)
      expect(skipped[0]!.file).toBe(truncated)
      expect(skipped[0]!.kind).toBe("truncated")
      expect(skipped[0]!.reason).toMatch(
        new RegExp(
          `^truncated: member "00000001\\.sar\\.npy" needs \\d+ bytes from byte \\d+, the archive ends at byte ${at} \\(sample 00000001 and any after it are lost\\)$`
        )
      )
    }).pipe(Effect.provide(layer)))

  it.effect("a file that is not a tar archive", () =>
    Effect.gen(function*() {
      const { skipped } = yield* (yield* Datasets).load(declared(join(dir, "garbage/shard-00000.tar")))
      expect(skipped).toEqual([{
        file: garbage,
        kind: "corrupt",
        reason: "corrupt: the member header at byte 0 has a bad checksum (not a tar archive, or damaged)"
      }])
    }).pipe(Effect.provide(layer)))

  it.effect("onError fail reads every shard, then fails listing every problem", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip((yield* Datasets).load({ ...declared(join(dir, "{bad,cut}/shard-00000.tar")), onError: "fail" }))
      expect(error._tag).toBe("DatasetFileProblems")
      if (error._tag !== "DatasetFileProblems") return
      expect(error.folder).toBe(dir)
      expect(error.problems.map((p) => [p.file.replace(dir, ""), p.kind])).toEqual([
        ["/bad/shard-00000.tar:00000001.sar.npy", "truncated"],
        ["/bad/shard-00000.tar:00000002.meta.json", "corrupt"],
        ["/bad/shard-00000.tar:00000003.meta.json", "missing-caption"],
        ["/bad/shard-00000.tar:00000004.sar.npy", "missing-member"],
        ["/bad/shard-00000.tar:00000006.sar.npy", "too-small"],
        ["/cut/shard-00000.tar", "truncated"]
      ])
      expect(error.message).toMatch(/6 file problems \(the dataset declares onError: "fail"\)/)
    }).pipe(Effect.provide(layer)))

  it.effect("members over the pixel limit are refused from their header, arrays and images alike", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const { samples, skipped } = yield* datasets.load({ ...declared(shard), maxPixels: 100 })
      expect(samples).toEqual([])
      // The 16 × 16 arrays are over 100 pixels; the cut one is refused before its values are missed.
      expect(skipped.filter((s) => s.kind === "too-large").map((s) => s.file.replace(dir, ""))).toEqual([
        "/bad/shard-00000.tar:00000000.sar.npy",
        "/bad/shard-00000.tar:00000001.sar.npy",
        "/bad/shard-00000.tar:00000002.sar.npy",
        "/bad/shard-00000.tar:00000003.sar.npy",
        "/bad/shard-00000.tar:00000005.sar.npy"
      ])
      expect(skipped[0]!.reason).toMatch(/^too large: 16 × 16 pixels in a file of .* is over the pixel limit of 100 \(10 × 10\)/)
      const { skipped: pngs } = yield* datasets.load({
        ...webDataset(`${FIXTURES}/long-names-pax.tar`, { image: "sar.png", unit: "amplitude", resolution: { size: 8 } }),
        onError: "skip",
        maxPixels: 63
      })
      expect(pngs.map((s) => s.kind)).toEqual(["too-large"])
    }).pipe(Effect.provide(layer)))

  it.effect("a complex array declared as intensity, and a pattern that matches nothing", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const { skipped } = yield* datasets.load({ ...declared(shard), unit: "intensity" })
      expect(skipped[0]).toMatchObject({ kind: "unit", reason: "holds complex values, read as amplitude |z|, but the dataset declares unit \"intensity\"" })
      const none = yield* Effect.flip(datasets.load(declared(join(dir, "nowhere/shard-{0..3}.tar"))))
      const nowhere = (i: number) => join(dir, `nowhere/shard-${i}.tar`)
      expect(none.message).toBe(`${nowhere(0)}: the shard pattern matches no file (nor do ${nowhere(1)}, ${nowhere(2)}, ${nowhere(3)})`)
    }).pipe(Effect.provide(layer)))

  it.effect("a ControlNet condition request is refused, naming conditioning.from, not answered without conditioning images", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const refused = yield* Effect.flip(datasets.load(declared(shard), { condition: { input: "optical", column: "optical_file_name" } }))
      expect(refused.message).toBe(
        `${shard}: conditioning.from names the metadata column "optical_file_name", but WebDataset shards have no metadata columns and their conditioning images are not read for a ControlNet; use an image folder or synthetic scenes`
      )
    }).pipe(Effect.provide(layer)))

  it.effect("data inspect on shards: members, image types and values, JSON text fields, every problem", () =>
    Effect.gen(function*() {
      const datasets = yield* Datasets
      const report = yield* datasets.inspectShards([`${SPLIT}/**/*.tar`], { caption: "meta.json#caption.MID" })
      expect(report.samples).toBe(expected.samples.length)
      expect(report.members).toEqual({ "sar.npy": 7, "sar.png": 7, "meta.json": 7, "sicd.xml": 7 })
      expect(report.images["sar.npy"]).toMatchObject({ count: 7, types: { "npy <c8": 6, "npy <c16": 1 }, sizes: { [`${side}×${side}`]: 7 } })
      const amplitudes = expected.samples.flatMap((s) => s.amplitude)
      expect(report.images["sar.npy"]!.values!.max).toBeCloseTo(Math.max(...amplitudes), 5)
      expect(report.images["sar.png"]!.types).toEqual({ png: 7 })
      expect(report.jsonFields).toEqual({ "meta.json#city": 7, "meta.json#caption.SHORT": 7, "meta.json#caption.MID": 7, "meta.json#caption.LONG": 7 })
      expect(report.caption).toEqual({ source: "meta.json#caption.MID", coverage: 1 })
      expect(report.problems).toEqual([])
      const bad = yield* datasets.inspectShards([shard, truncated, garbage], { caption: "meta.json#caption.MID" })
      expect(bad.problems.map((p) => [p.file.replace(dir, ""), p.kind])).toEqual([
        ["/bad/shard-00000.tar:00000001.sar.npy", "truncated"],
        ["/bad/shard-00000.tar:00000002.meta.json", "corrupt"],
        ["/bad/shard-00000.tar:00000002.meta.json", "missing-caption"],
        ["/bad/shard-00000.tar:00000003.meta.json", "missing-caption"],
        ["/cut/shard-00000.tar", "truncated"],
        ["/garbage/shard-00000.tar", "corrupt"]
      ])
    }).pipe(Effect.provide(layer)))

  it("`sardine data inspect` on a folder of shards, --strict", async () => {
    const ok = await sardine(["data", "inspect", SPLIT, "--caption", "meta.json#caption.LONG"])
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toMatch(/^samples\s+7$/m)
    expect(ok.stdout).toMatch(/^captions\s+100% in meta\.json#caption\.LONG$/m)
    const strict = await sardine(["data", "inspect", join(dir, "bad/*.tar"), "--strict", "--json"])
    expect(strict.code).toBe(1)
    // Without a caption source, the damaged members: the cut array and the broken JSON.
    expect(JSON.parse(strict.stdout).problems.map((p: { kind: string }) => p.kind)).toEqual(["truncated", "corrupt"])
  })

  it("declarations name the field and the rule", () => {
    const issues = (f: () => unknown) => {
      try {
        f()
      } catch (error) {
        return (error as DatasetDeclarationError).issues
      }
      throw new Error("expected a refusal")
    }
    expect(issues(() => webDataset("x.tar", { image: "sicd.xml", unit: "amplitude" }))).toEqual([
      "image: must name an image member by its extension, ending in png, jpg, jpeg, tif, tiff or npy (got \"sicd.xml\")"
    ])
    expect(issues(() => webDataset("x.tar", { image: "png", caption: "meta.json", unit: "amplitude" }))).toEqual([
      "caption: names a JSON member: add #<field path>, e.g. \"meta.json#caption\" (got \"meta.json\")"
    ])
    expect(issues(() => webDataset([], { image: "png", caption: "txt#a", unit: "amplitude" }))).toEqual(expect.arrayContaining([
      "caption: #<field path> reads JSON members only; \"txt\" is not one (got \"txt#a\")"
    ]))
    expect(issues(() => sarlo80("x", { caption: "TINY" as never }))).toEqual(["caption: must be one of \"SHORT\", \"MID\", \"LONG\" (got \"TINY\")"])
    // Nothing reads a paired member from shards (a ControlNet reads its conditions from image folders or
    // synthetic scenes): a `conditioning` member is refused, not accepted and ignored.
    expect(issues(() => webDataset("x.tar", { image: "png", unit: "amplitude", conditioning: "optic.png" } as never))).toEqual([
      expect.stringMatching(/^conditioning: /)
    ])
  })
})
