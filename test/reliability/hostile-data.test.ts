import { existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, expect, it } from "vitest"
import { pngOfZeros } from "../support/decompression-bombs.ts"
import { repoRoot, sardine } from "../support/run-process.ts"

/*
 * Issue 17, items 1, 7 and 10 as a user meets them, through the `sardine` command: a small file
 * declaring a huge image, several bad files in a dataset declared onError "fail", and a symbolic
 * link leading out of the dataset folder. Each run is a real process on real files; the data step
 * runs alone (`sardine step`), so no model is loaded. Five processes, about 15 s on an idle machine.
 */

const scratch = () => mkdtempSync(join(tmpdir(), "sardine-hostile-data-"))

/** One good 40 × 40 PNG, the 877 KB PNG of 30000 × 30000 zeros, a cut PNG and a symbolic link out of the folder. */
const writeDataset = (root: string) => {
  const folder = mkdtempSync(join(root, "data-"))
  const outside = mkdtempSync(join(root, "outside-"))
  writeFileSync(join(folder, "good.png"), pngOfZeros(40, 40))
  writeFileSync(join(folder, "zeros.png"), pngOfZeros(30000, 30000))
  writeFileSync(join(folder, "cut.png"), pngOfZeros(40, 40).subarray(0, 60))
  writeFileSync(join(outside, "private.png"), pngOfZeros(40, 40))
  symlinkSync(join(outside, "private.png"), join(folder, "escape.png"))
  const names = ["good.png", "zeros.png", "cut.png", "escape.png"]
  writeFileSync(join(folder, "metadata.jsonl"), names.map((name) => JSON.stringify({ file_name: name, text: name })).join("\n") + "\n")
  return { folder, outside }
}

const declarationFor = (root: string, folder: string, onError: "skip" | "fail") => {
  const file = join(root, `${onError}.ts`)
  writeFileSync(
    file,
    [
      `import { imageFolder } from ${JSON.stringify(join(repoRoot, "framework/index.ts"))}`,
      `import { validExperiment } from ${JSON.stringify(join(repoRoot, "test/support/declarations.ts"))}`,
      "",
      `export default validExperiment({ data: imageFolder(${JSON.stringify(folder)}, { unit: "amplitude", onError: ${
        JSON.stringify(onError)
      }, resolution: { size: 32 } }) })`,
      ""
    ].join("\n")
  )
  return file
}

const prepare = (root: string, declaration: string) =>
  sardine(["step", declaration, "tiny/data", "--cache-dir", join(root, "cache"), "--tracking-uri", join(root, "mlruns")])

describe("hostile data files, through the sardine command", () => {
  it("data inspect reports the 877 KB PNG of 30000 × 30000 pixels as too large (and the link out), without decoding it", async () => {
    const root = scratch()
    const { folder, outside } = writeDataset(root)
    const result = await sardine(["data", "inspect", folder])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("images        4 (1 readable)")
    expect(result.stdout).toContain(
      "  zeros.png  [too-large]  too large: 30000 × 30000 pixels in a file of 877 KB is over the pixel limit of 268435456 (16384 × 16384)"
    )
    expect(result.stdout).toContain(`  escape.png  [outside-folder]  a symbolic link to ${join(outside, "private.png")}, outside the dataset folder`)
    const strict = await sardine(["data", "inspect", folder, "--strict"])
    expect(strict.code).toBe(1)
    expect(strict.stderr).toContain(`${folder}: 3 problems (--strict)`)
    const bad = await sardine(["data", "inspect", folder, "--max-pixels", "0"])
    expect(bad.code).toBe(2)
    expect(bad.stdout + bad.stderr).toContain("--max-pixels: must be an integer ≥ 1 (got 0)")
  })

  it("prepare-data with onError \"skip\" leaves the huge, cut and outside files out, each listed in the index", async () => {
    const root = scratch()
    const { folder, outside } = writeDataset(root)
    const result = await prepare(root, declarationFor(root, folder, "skip"))
    expect(result.stderr + result.stdout).toContain("1 samples of 32×32×1, 3 files skipped (listed in index.json)")
    expect(result.code).toBe(0)
    const [key] = readdirSync(join(root, "cache", "steps"))
    assert.isDefined(key, "the data step's folder")
    const index = JSON.parse(readFileSync(join(root, "cache", "steps", key, "index.json"), "utf8"))
    expect(index.samples.map((s: { id: string }) => s.id)).toEqual(["good.png"])
    expect(index.skipped.map((s: { file: string; kind: string }) => [s.file, s.kind])).toEqual([
      [join(folder, "zeros.png"), "too-large"],
      [join(folder, "cut.png"), "truncated"],
      [join(folder, "escape.png"), "outside-folder"]
    ])
    expect(index.skipped[2].reason).toContain(join(outside, "private.png"))
  })

  it("prepare-data with onError \"fail\" checks every file, lists every problem, then fails; nothing is committed", async () => {
    const root = scratch()
    const { folder } = writeDataset(root)
    const result = await prepare(root, declarationFor(root, folder, "fail"))
    expect(result.code).toBe(1)
    const output = result.stdout + result.stderr
    expect(output).toContain(`${folder}: 3 file problems (the dataset declares onError: "fail"):`)
    expect(output).toContain("  zeros.png  [too-large]  too large: 30000 × 30000 pixels")
    expect(output).toContain("  cut.png  [truncated]  truncated: the PNG file has no IEND chunk (60 bytes)")
    expect(output).toContain("  escape.png  [outside-folder]  a symbolic link to ")
    expect(output).toContain("declare onError: \"skip\" to leave these files out")
    expect(existsSync(join(root, "cache", "steps")) ? readdirSync(join(root, "cache", "steps")) : []).toEqual([])
  })
})
