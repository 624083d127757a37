import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { sardine } from "../support/run-process.ts"

/** `sardine synth` and `sardine data inspect` as real processes. */

const scratch = () => mkdtempSync(join(tmpdir(), "sardine-cli-data-"))

describe("sardine synth", () => {
  it("writes an imagefolder; the same arguments give the same bytes", async () => {
    const root = scratch()
    const args = (out: string) => ["synth", "--out", out, "-n", "2", "--size", "48", "--seed", "9", "--looks", "2", "--exclude", "ships,bridges"]
    const first = await sardine(args(join(root, "a")))
    expect(first.stderr).toBe("")
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(new RegExp(`^wrote 2 scenes to ${join(root, "a")}\n`))
    const second = await sardine([...args(join(root, "b")), "--json"])
    expect(second.code).toBe(0)
    expect(JSON.parse(second.stdout)).toMatchObject({ folder: join(root, "b"), scenes: 2 })
    for (const file of ["metadata.jsonl", "sar/scene-000000.tif", "sar/scene-000001.tif", "labels/scene-000001.png", "optical/scene-000000.png"]) {
      expect(readFileSync(join(root, "b", file)).equals(readFileSync(join(root, "a", file))), file).toBe(true)
    }
    const description = JSON.parse(readFileSync(join(root, "a", "synthetic.json"), "utf8"))
    expect(description).toMatchObject({ n: 2, size: 48, seed: 9, looks: 2, exclude: ["ships", "bridges"], lookDirection: "right" })
  })

  it("a bad option value is a usage error (exit 2) naming the option and the rule; nothing is written", async () => {
    const root = scratch()
    const looks = await sardine(["synth", "--out", join(root, "x"), "-n", "2", "--looks", "0"])
    expect(looks.code).toBe(2)
    expect(looks.stdout + looks.stderr).toContain("--looks: must be an integer ≥ 1 (got 0)")
    const exclude = await sardine(["synth", "--out", join(root, "x"), "-n", "2", "--exclude", "ships,cars"])
    expect(exclude.code).toBe(2)
    expect(exclude.stdout + exclude.stderr).toContain(
      "--exclude: must be one of \"water\", \"bare-field\", \"crops\", \"forest\", \"urban\", \"roads\", \"bridges\", \"ships\" (got \"cars\")"
    )
    expect(readdirSync(root)).toEqual([])
  })

  it("an existing, non-empty output folder is invalid input (exit 1)", async () => {
    const root = scratch()
    writeFileSync(join(root, "keep.txt"), "")
    const result = await sardine(["synth", "--out", root, "-n", "1", "--size", "32"])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain(`${root}: output folder exists and is not empty`)
  })
})

describe("sardine data inspect", () => {
  it("exit 0 on a clean folder, with or without --strict; --json prints the report", async () => {
    const root = scratch()
    expect((await sardine(["synth", "--out", join(root, "set"), "-n", "2", "--size", "32"])).code).toBe(0)
    const text = await sardine(["data", "inspect", join(root, "set"), "--strict"])
    expect(text.code).toBe(0)
    expect(text.stdout).toContain("images        2 (2 readable)")
    expect(text.stdout).toContain("problems      none")
    const json = await sardine(["data", "inspect", join(root, "set"), "--json"])
    expect(json.code).toBe(0)
    expect(JSON.parse(json.stdout)).toMatchObject({ images: 2, captionCoverage: 1, problems: [] })
  })

  it("problems are printed; --strict turns them into exit 1", async () => {
    const root = scratch()
    expect((await sardine(["synth", "--out", join(root, "set"), "-n", "2", "--size", "32"])).code).toBe(0)
    const broken = join(root, "set", "sar", "scene-000001.tif")
    writeFileSync(broken, readFileSync(broken).subarray(0, 500))
    const lenient = await sardine(["data", "inspect", join(root, "set")])
    expect(lenient.code).toBe(0)
    expect(lenient.stdout).toMatch(
      /\n  sar\/scene-000001\.tif  \[truncated\]  truncated: pixel data runs to byte \d+ but the file has only 500 bytes\n/
    )
    const strict = await sardine(["data", "inspect", join(root, "set"), "--strict"])
    expect(strict.code).toBe(1)
    expect(strict.stderr).toContain(`${join(root, "set")}: 1 problem (--strict)`)
  })

  it("a folder that does not exist is a usage error (exit 2)", async () => {
    const result = await sardine(["data", "inspect", join(scratch(), "nowhere")])
    expect(result.code).toBe(2)
  })
})
