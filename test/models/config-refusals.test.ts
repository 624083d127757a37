import { Effect } from "effect"
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { configRefusals } from "../../adapters/tfjs/config-refusals.ts"
import type { SamplerDeclaration } from "../../framework/services/model-architecture.ts"

/**
 * Plan-time config refusals when a config file is there but cannot be read: refused, naming the file and
 * why (no "run it with --engine torch" hint: diffusers cannot read it either), on both engines; a base not
 * there yet (still to download) is not a refusal. Cost: < 1 s.
 */

const tiny = join(import.meta.dirname, "..", "fixtures", "pipelines", "sd1-tiny")
const sampler: SamplerDeclaration = { sampler: "euler", steps: 4, eta: 0 }
const made: Array<string> = []
afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })))

const copyOfTiny = () => {
  const dir = mkdtempSync(join(tmpdir(), "sardine-config-refusals-"))
  made.push(dir)
  const base = join(dir, "base")
  cpSync(tiny, base, { recursive: true })
  return base
}

describe("config refusals on a config file that is there but unreadable", () => {
  it("a UNet config that is not JSON is refused on the tfjs engine, naming the file, without the engine hint", async () => {
    const base = copyOfTiny()
    writeFileSync(join(base, "unet", "config.json"), "{ \"in_channels\": 4,")
    const refusals = await Effect.runPromise(configRefusals("tfjs", { base }, sampler))
    expect(refusals).toHaveLength(1)
    expect(refusals[0]!.field).toBe("base")
    expect(refusals[0]!.reason).toContain(`${join(base, "unet", "config.json")}: not readable JSON`)
    expect(refusals[0]!.reason).not.toContain("--engine torch")
  })

  it("a folder where the VAE config should be is refused on the torch engine, naming it", async () => {
    const base = copyOfTiny()
    rmSync(join(base, "vae", "config.json"))
    cpSync(join(base, "scheduler"), join(base, "vae", "config.json"), { recursive: true })
    const refusals = await Effect.runPromise(configRefusals("torch", { base }, sampler))
    expect(refusals.map((r) => r.field)).toEqual(["base"])
    expect(refusals[0]!.reason).toContain(`${join(base, "vae", "config.json")}: not readable`)
  })

  it("the shipped tiny pipeline has no refusal, and a base not there yet is none on either engine", async () => {
    expect(await Effect.runPromise(configRefusals("tfjs", { base: tiny }, sampler))).toEqual([])
    const missing = join(tmpdir(), "sardine-config-refusals-not-downloaded", "base")
    expect(await Effect.runPromise(configRefusals("tfjs", { base: missing }, sampler))).toEqual([])
    expect(await Effect.runPromise(configRefusals("torch", { base: missing }, sampler))).toEqual([])
  })
})
