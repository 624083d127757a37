import { existsSync, mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { sardine } from "../support/run-process.ts"

describe("usage errors from the real command line", () => {
  it("`sardine synth --out d --n 6`: two lines on stderr naming --n and -n / --count, exit 2, nothing written", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sardine-usage-"))
    const result = await sardine(["synth", "--out", join(dir, "d"), "--n", "6"])
    expect(result.code).toBe(2)
    expect(result.stdout).toBe("")
    expect(result.stderr).toBe("sardine synth: unknown option '--n' (did you mean '-n' / '--count'?)\nRun 'sardine synth --help' for its options.\n")
    expect(existsSync(join(dir, "d"))).toBe(false)
  })

  it("a value refused while the command runs is printed the same way", async () => {
    const result = await sardine(["synth", "--out", join(tmpdir(), "sardine-usage-never"), "-n", "2", "--looks", "0"])
    expect(result.code).toBe(2)
    expect(result.stderr).toBe("sardine synth: --looks: must be an integer ≥ 1 (got 0)\nRun 'sardine synth --help' for its options.\n")
  })

  it("--help still prints the command's help, exit 0", async () => {
    const result = await sardine(["synth", "--help"])
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("--look-direction")
  })
})
