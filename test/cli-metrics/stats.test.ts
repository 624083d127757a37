import { describe, expect, it } from "vitest"
import { GLCM_PROPERTIES } from "../../framework/metrics/glcm.ts"
import { sardine } from "../support/run-process.ts"
import { expectGolden, expectGoldenMatrix, readGolden } from "../metrics/golden.ts"

/** `sardine stats` as a real process on real files, against numpy / scipy / scikit-image. */

const golden = readGolden("cli.json").stats
const { levels, distances, angles } = golden.options
const textureArgs = ["--levels", String(levels), "--distances", distances.join(","), "--angles", angles.join(",")]

const AMPLITUDE_KEYS = Object.keys(golden.scene.amplitude)

const expectImage = (actual: any, expected: any) => {
  expect(actual.file).toBe(expected.file)
  // JSON has no NaN / Infinity: sardine prints null where the golden says so.
  for (const key of AMPLITUDE_KEYS) {
    const e = expected.amplitude[key]
    if (typeof e === "string") expect(actual.amplitude[key], key).toBeNull()
    else expectGolden(actual.amplitude[key], e, `${expected.file}: amplitude.${key}`)
  }
  expect(Object.keys(actual.glcm).sort()).toEqual([...GLCM_PROPERTIES].sort())
  for (const name of GLCM_PROPERTIES) {
    expect(actual.glcm[name]).toHaveLength(distances.length)
    for (const row of actual.glcm[name]) expect(row).toHaveLength(angles.length)
    expectGoldenMatrix(actual.glcm[name], expected.glcm[name], `${expected.file}: glcm.${name}`)
  }
}

describe("sardine stats", () => {
  it("the real Sentinel-1 scene in dB: one JSON object matching the goldens", async () => {
    const result = await sardine(["stats", golden.scene.file, "--unit", "db", ...textureArgs, "--json"])
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    const out = JSON.parse(result.stdout)
    expect(Array.isArray(out)).toBe(false)
    expect(out.settings).toEqual({ levels, distances, angles })
    expect([out.width, out.height]).toEqual([268, 217])
    expectImage(out, golden.scene)
  })

  it("several images: a JSON array in argument order; no-data pixels are left out", async () => {
    const result = await sardine(["stats", golden.nodata.file, golden.scene.file, "--unit", "db", ...textureArgs, "--json"])
    expect(result.code).toBe(0)
    const out = JSON.parse(result.stdout)
    expect(out).toHaveLength(2)
    expectImage(out[0], golden.nodata)
    expectImage(out[1], golden.scene)
  })

  it("an 8-bit PNG, and a constant image whose undefined statistics print as null", async () => {
    const result = await sardine(["stats", golden.png.file, golden.constant.file, ...textureArgs, "--json"])
    expect(result.code).toBe(0)
    const [png, constant] = JSON.parse(result.stdout)
    expectImage(png, golden.png)
    expectImage(constant, golden.constant)
    expect(constant.amplitude.enl).toBeNull()
    expect(constant.glcm.correlation).toEqual([[1, 1, 1, 1], [1, 1, 1, 1]])
  })

  it("prints readable text without --json", async () => {
    const result = await sardine(["stats", golden.png.file])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain(golden.png.file)
    expect(result.stdout).toMatch(/amplitude {2}mean [0-9.]+ {2}std/)
    for (const name of GLCM_PROPERTIES) expect(result.stdout).toContain(name)
  })

  it("NaN in a file: exit 1, naming the file and the pixel", async () => {
    const result = await sardine(["stats", "test/fixtures/metrics/images/nan.tif", "--json"])
    expect(result.code).toBe(1)
    expect(result.stdout).toBe("")
    expect(result.stderr).toContain("test/fixtures/metrics/images/nan.tif: value NaN at row 2, column 3 is not a finite number")
  })

  it("colour bands that differ: exit 1, asking for --band; --band picks one", async () => {
    const file = "test/fixtures/metrics/images/colour.png"
    const refused = await sardine(["stats", file])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain(`${file}: has 3 bands whose values differ`)
    expect(refused.stderr).toContain("--band")
    const picked = await sardine(["stats", file, "--band", "1", "--json"])
    expect(picked.code).toBe(0)
    expect(JSON.parse(picked.stdout).amplitude.count).toBe(64)
  })

  it("a file that is not an image: exit 1, naming it", async () => {
    const result = await sardine(["stats", "package.json"])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain("package.json")
  })

  it("usage errors exit 2", async () => {
    for (const args of [["--levels", "0"], ["--distances", "1,x"], ["--unit", "decibel"]]) {
      const result = await sardine(["stats", golden.png.file, ...args])
      expect(result.code, args.join(" ")).toBe(2)
    }
    expect((await sardine(["stats"])).code).toBe(2)
  })
})
