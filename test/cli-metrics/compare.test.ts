import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { GLCM_PROPERTIES } from "../../framework/metrics/glcm.ts"
import { sardine } from "../support/run-process.ts"
import { expectGolden, expectGoldenMatrix, readGolden } from "../metrics/golden.ts"

/** `sardine compare` as a real process: the real scene against a folder of images of other sizes. */

const golden = readGolden("cli.json").compare
const empty = mkdtempSync(join(tmpdir(), "sardine-compare-"))
afterAll(() => rmSync(empty, { recursive: true, force: true }))

describe("sardine compare", () => {
  it("a file against a folder: pooled amplitude distances and GLCM set texture match the goldens", async () => {
    const result = await sardine(["compare", golden.a, golden.b, "--unit", golden.unit, "--json"])
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    const out = JSON.parse(result.stdout)
    expect(out.a.images).toEqual([golden.a])
    expect(out.b.images).toEqual([`${golden.b}/speckle-a.tif`, `${golden.b}/speckle-b.tif`])
    expect(out.a.samples).toBe(268 * 217)
    expect(out.b.samples).toBe(48 * 40 + 40 * 56)
    const d = golden.defaults
    expect(out.settings).toEqual({
      unit: golden.unit,
      domain: { kind: "amplitude" },
      bins: d.bins,
      range: [0, 1],
      klPseudoCount: d.klPseudoCount,
      levels: d.levels,
      distances: d.distances,
      angles: d.angles,
      textureDistance: "canberra"
    })
    for (const key of ["wasserstein", "ks", "kl", "js", "hellinger", "bhattacharyya"]) {
      expectGolden(out.amplitude[key], golden.amplitude[key], `amplitude.${key}`)
    }
    expectGolden(out.glcm.canberra, golden.glcm.canberra, "glcm.canberra")
    for (const name of GLCM_PROPERTIES) {
      expectGoldenMatrix(out.glcm.a[name], golden.glcm.a[name], `glcm.a.${name}`)
      expectGoldenMatrix(out.glcm.b[name], golden.glcm.b[name], `glcm.b.${name}`)
    }
  })

  it("a folder against itself is at distance 0; the dB domain is stated in the settings", async () => {
    const result = await sardine(["compare", golden.b, golden.b, "--unit", "db", "--domain", "db", "--floor-db", "-40", "--bins", "32", "--json"])
    expect(result.code).toBe(0)
    const out = JSON.parse(result.stdout)
    expect(out.settings.domain).toEqual({ kind: "db", floorDb: -40 })
    expect(out.settings.range).toEqual([-40, 0])
    for (const key of ["wasserstein", "ks", "kl", "js", "hellinger", "bhattacharyya"]) expect(out.amplitude[key], key).toBe(0)
    expect(out.glcm.canberra).toBe(0)
  })

  it("prints readable text without --json", async () => {
    const result = await sardine(["compare", golden.a, golden.b, "--unit", "db"])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("wasserstein")
    expect(result.stdout).toContain("Canberra")
  })

  it("an empty folder: exit 1, naming it", async () => {
    const result = await sardine(["compare", golden.a, empty, "--unit", "db"])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`${empty}: the folder holds no PNG, JPEG or TIFF image`)
  })

  it("NaN in one image of a side: exit 1, naming that image", async () => {
    const result = await sardine(["compare", golden.a, "test/fixtures/metrics/images/nan.tif", "--unit", "db"])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain("nan.tif: value NaN at row 2, column 3")
  })

  it("usage errors exit 2", async () => {
    for (const args of [["--bins", "0"], ["--floor-db", "3"]]) {
      const result = await sardine(["compare", golden.a, golden.b, ...args])
      expect(result.code, args.join(" ")).toBe(2)
    }
    expect((await sardine(["compare", golden.a])).code).toBe(2)
  })
})
