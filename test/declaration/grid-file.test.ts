import { mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { repoRoot, sardine } from "../support/run-process.ts"

describe("grid in a declaration file", () => {
  it("a declaration file whose grid is refused names the rule and the line that called it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sardine-grid-"))
    const file = join(dir, "bad-grid.ts")
    await writeFile(
      file,
      [
        `import { grid, study } from ${JSON.stringify(join(repoRoot, "framework/index.ts"))}`,
        `import { validExperiment } from ${JSON.stringify(join(repoRoot, "test/support/declarations.ts"))}`,
        "",
        "export default study({ name: \"sweep\", experiments: grid(validExperiment(), { \"train.steps\": [] }) })",
        ""
      ].join("\n")
    )
    const result = await sardine(["validate", file])
    expect(result.code).toBe(1)
    expect(result.stderr).toContain("invalid grid:\n  axis \"train.steps\": has no values")
    expect(result.stderr).toContain(`(called at ${file}:4:`)
    expect(result.stderr).not.toContain("node:internal")
  })
})
