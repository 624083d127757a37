import { existsSync } from "node:fs"
import { mkdtemp } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { repoRoot, sardine } from "../support/run-process.ts"

describe("missing declared folders", () => {
  it("the paper study without SDXL weights fails at once, naming each missing folder", async () => {
    const cache = join(await mkdtemp(join(tmpdir(), "sardine-preflight-")), "cache")
    const result = await sardine(["run", `${repoRoot}/experiments/paper/study.ts`, "--cache-dir", cache], {
      env: { SARDINE_SDXL: "/nonexistent/sdxl-base" }
    })
    expect(result.code).toBe(1)
    expect(result.stderr).toContain("full-unet/latents: base.path \"/nonexistent/sdxl-base\": folder /nonexistent/sdxl-base does not exist")
    expect(result.stderr).toContain(`data.path "$SARDINE_SAR_TRAIN": folder ${repoRoot}/experiments/paper/$SARDINE_SAR_TRAIN does not exist`)
    expect(result.stderr).toMatch(/\/reference: evaluate\.reference\.path "[^"]+": folder .* does not exist/)
    expect(result.stderr).not.toContain("dataset.path")
    expect(existsSync(join(cache, "steps"))).toBe(false)
  })
})
