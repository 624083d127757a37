import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import type { WeightsListing } from "../../framework/services/weights.ts"
import { sardine } from "../support/run-process.ts"
import { copyOf } from "../models/checkpoint-files.ts"

const FIXTURES = "test/fixtures/pipelines"
const counts = JSON.parse(await readFile(join(FIXTURES, "parameter-counts.json"), "utf8")) as Record<string, Record<string, number>>

describe("sardine weights", () => {
  it("lists every component of a pipeline folder with the parameter counts torch reports", async () => {
    const result = await sardine(["weights", `${FIXTURES}/sdxl-tiny`, "--json"])
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    const listing = JSON.parse(result.stdout) as WeightsListing
    expect(listing.kind).toBe("pipeline")
    expect(Object.fromEntries(listing.components.map((c) => [c.name, c.parameters]))).toEqual(counts["sdxl-tiny"])
    expect(listing.parameters).toBe(Object.values(counts["sdxl-tiny"]!).reduce((a, b) => a + b, 0))
    const encoder = listing.components.find((c) => c.name === "text_encoder_2")!
    expect(encoder.className).toBe("CLIPTextModelWithProjection")
    expect(encoder.tensors.find((t) => t.name === "text_projection.weight")).toEqual({
      name: "text_projection.weight",
      dtype: "F16",
      shape: [12, 16],
      parameters: 192
    })
  })

  it("prints a readable listing of one file: dtype and shape per tensor, then the total", async () => {
    const result = await sardine(["weights", `${FIXTURES}/sd1-tiny/vae/diffusion_pytorch_model.safetensors`])
    expect(result.code).toBe(0)
    const lines = result.stdout.trimEnd().split("\n")
    expect(lines[0]).toBe(
      `diffusion_pytorch_model.safetensors: ${
        counts["sd1-tiny"]!.vae!.toLocaleString("en-US")
      } parameters in ${FIXTURES}/sd1-tiny/vae/diffusion_pytorch_model.safetensors`
    )
    expect(lines.find((l) => l.trim().startsWith("decoder.conv_in.weight"))?.replace(/\s+/g, " ").trim()).toBe("decoder.conv_in.weight BF16 [8, 4, 3, 3]")
    expect(lines.at(-1)).toBe(`total: ${counts["sd1-tiny"]!.vae!.toLocaleString("en-US")} parameters`)
  })

  it("exits 1 with the file and the reason on a corrupt file", async () => {
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const folder = yield* copyOf(`${FIXTURES}/sd1-tiny/unet`)
      const file = join(folder, "diffusion_pytorch_model.safetensors")
      const bytes = yield* Effect.promise(() => readFile(file))
      yield* Effect.promise(() => writeFile(file, bytes.subarray(0, bytes.length - 100)))
      const result = yield* Effect.promise(() => sardine(["weights", file]))
      expect(result.code).toBe(1)
      expect(result.stderr).toMatch(new RegExp(`^error: ${file}: tensor ".+": data ends at byte \\d+ but the file has \\d+ bytes \\(truncated\\?\\)\\n$`))
    })))
  })

  it("exits 2 when the path does not exist (usage error)", async () => {
    const result = await sardine(["weights", "no/such/checkpoint.safetensors"])
    expect(result.code).toBe(2)
  })
})
