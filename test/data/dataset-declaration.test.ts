import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Dataset, DatasetDeclarationError, dbWindow, decodeDataset, imageFolder, meanStd, percentiles, synthetic } from "../../framework/declaration/dataset.ts"

const issuesOf = (input: unknown) => Effect.runSync(Effect.flip(decodeDataset(input))).issues

describe("dataset declaration", () => {
  it("fills the defaults of an image folder", () => {
    expect(imageFolder("data/sar", { unit: "amplitude" })).toEqual({
      _tag: "image-folder",
      path: "data/sar",
      unit: "amplitude",
      normalisation: { _tag: "mean-std", k: 3, statistics: "per-image" },
      resolution: { size: 512, mode: "center-crop", flip: "none" },
      captionTemplate: "{caption}",
      onError: "fail",
      seed: 0,
      maxPixels: 16384 * 16384,
      followSymlinks: false
    })
  })

  it("fills the defaults of a synthetic dataset", () => {
    const d = synthetic({ n: 10, size: 64 })
    expect(d).toMatchObject({ _tag: "synthetic", seed: 0, looks: 1, exclude: [], lookDirection: "right", modality: "sar" })
    expect(d.captionTemplate).toBe("SAR image of {caption}")
    expect(synthetic({ n: 1, size: 16, modality: "optical" }).captionTemplate).toBe("optical image of {caption}")
    expect(synthetic({ n: 1, size: 16, captionTemplate: "{token} of {caption}" }).captionTemplate).toBe("{token} of {caption}")
  })

  it("a built declaration decodes again to itself (it is plain data)", () => {
    const d = imageFolder("x", {
      unit: "db",
      band: 1,
      noData: -99,
      normalisation: meanStd({ statistics: { mean: 0.2, std: 0.1 } }),
      resolution: { size: 64, mode: "tile", stride: 32, flip: "both" },
      captionTemplate: "{token} image of {caption}",
      onError: "skip",
      maxPixels: 4096 * 4096,
      followSymlinks: true
    })
    expect(Schema.decodeUnknownSync(Dataset)(JSON.parse(JSON.stringify(d)))).toEqual(d)
  })

  it("names the field and the rule", () => {
    expect(issuesOf({ _tag: "synthetic", n: 3, size: 64, looks: 0 })).toEqual(["looks: must be an integer ≥ 1 (got 0)"])
    expect(issuesOf({ _tag: "synthetic", n: 3, size: 64, exclude: ["ships", "cars"] })).toEqual([
      "exclude.1: must be one of \"water\", \"bare-field\", \"crops\", \"forest\", \"urban\", \"roads\", \"bridges\", \"ships\" (got \"cars\")"
    ])
    expect(issuesOf({ _tag: "image-folder", path: "x", unit: "volts" })).toEqual([
      "unit: must be one of \"amplitude\", \"intensity\", \"db\" (got \"volts\")"
    ])
    expect(issuesOf({ _tag: "image-folder", path: "x", unit: "db", captionTemplate: "{tok} of {caption}" })).toEqual([
      "captionTemplate: uses unknown placeholder {tok}; allowed: {token}, {caption}"
    ])
    expect(issuesOf({ _tag: "image-folder", path: "x", unit: "db", resolution: { size: 4 } })).toEqual([
      "resolution.size: must be an integer from 8 to 8192 (got 4)"
    ])
    expect(issuesOf({ _tag: "image-folder", path: "x", unit: "db", onError: "ignore" })).toEqual([
      "onError: must be one of \"fail\", \"skip\" (got \"ignore\")"
    ])
    expect(issuesOf({ _tag: "image-folder", path: " ", unit: "db" })).toEqual(["path: must not be empty"])
    expect(issuesOf({ _tag: "image-folder", path: "x", unit: "db", maxPixels: 0, followSymlinks: "yes" })).toEqual([
      "maxPixels: must be an integer ≥ 1 (got 0)",
      "followSymlinks: must be true or false (got \"yes\")"
    ])
    expect(issuesOf({ _tag: "synthetic", n: "many", size: 64 })).toEqual(["n: must be a number (got \"many\")"])
  })

  it("reports every problem at once, and unknown fields", () => {
    const issues = issuesOf({ _tag: "synthetic", n: 0, size: 64, lookDirection: "north", palette: "red" })
    expect(issues).toContain("n: must be an integer ≥ 1 (got 0)")
    expect(issues).toContain("lookDirection: must be one of \"right\", \"left\", \"down\", \"up\" (got \"north\")")
    expect(issues.some((i) => i.startsWith("palette: is unexpected"))).toBe(true)
  })

  it("a synthetic dataset must keep a class that covers a scene", () => {
    expect(issuesOf({ _tag: "synthetic", n: 1, size: 32, exclude: ["water", "bare-field", "crops", "forest", "urban"] })).toEqual([
      "exclude: must leave at least one of water, bare-field, crops, forest, urban (the classes that cover a scene)"
    ])
  })

  it("checks normalisation windows", () => {
    expect(() => dbWindow(0, -25)).toThrow("max: must be greater than min (0) (got -25)")
    expect(() => percentiles(99, 1)).toThrow("high: must be greater than low (99) (got 1)")
    expect(() => percentiles(-1, 50)).toThrow("low: must be a number from 0 to 100 (got -1)")
    expect(percentiles()).toEqual({ _tag: "percentile", low: 1, high: 99 })
  })

  it("builders throw a typed error", () => {
    try {
      synthetic({ n: 1, size: 8 })
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(DatasetDeclarationError)
      expect((error as DatasetDeclarationError).issues).toEqual(["size: must be an integer from 16 to 8192 (got 8)"])
    }
  })
})
