import { describe, expect, it } from "@effect/vitest"
import { readFile } from "node:fs/promises"
import type { WeightsListing } from "../../framework/services/weights.ts"
import { sardine } from "../support/run-process.ts"

/**
 * The SDXL architecture folder (experiments/architectures/sdxl: the published configs, CLIP's vocabulary) as
 * `sardine weights` reads it, against the models diffusers and transformers build from the same configs
 * (tools/make_sdxl_goldens.py). One sardine process, ~10 s.
 */

const ARCHITECTURE = "experiments/architectures/sdxl"
const goldens = JSON.parse(await readFile("test/fixtures/sdxl/goldens.json", "utf8")) as {
  parameters: Record<string, { parameters: number; tensors: number }>
}

describe("the SDXL architecture folder", () => {
  it("sardine weights counts 2.57 G UNet parameters from the configs alone, every component as from_config builds it", async () => {
    const json = await sardine(["weights", ARCHITECTURE, "--json"])
    expect(json.stderr).toBe("")
    expect(json.code).toBe(0)
    const listing = JSON.parse(json.stdout) as WeightsListing
    expect(listing.kind).toBe("pipeline")
    const counted = Object.fromEntries(listing.components.map((c) => [c.name, { parameters: c.parameters, tensors: c.tensors.length }]))
    expect(counted).toEqual(goldens.parameters)
    expect(listing.components.map((c) => [c.name, c.className, c.source])).toEqual([
      ["text_encoder", "CLIPTextModel", "config"],
      ["text_encoder_2", "CLIPTextModelWithProjection", "config"],
      ["unet", "UNet2DConditionModel", "config"],
      ["vae", "AutoencoderKL", "config"]
    ])
    const unet = listing.components.find((c) => c.name === "unet")!
    expect(unet.tensors.find((t) => t.name === "add_embedding.linear_1.weight")).toEqual({
      name: "add_embedding.linear_1.weight",
      dtype: "F32",
      shape: [1280, 2816],
      parameters: 1280 * 2816
    })

    const text = await sardine(["weights", ARCHITECTURE])
    expect(text.code).toBe(0)
    expect(text.stdout).toContain(
      `unet (UNet2DConditionModel): 2,567,463,684 parameters (2.57 G) from ${ARCHITECTURE}/unet/config.json (no weights: the model its config builds)`
    )
  })
})
