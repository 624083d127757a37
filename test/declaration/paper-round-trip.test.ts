import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { mkdtemp, readFile, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { resolveAdaptation } from "../../framework/declaration/adaptation.ts"
import { canonicalJson, canonicalJsonPretty, contentHash } from "../../framework/declaration/canonical-json.ts"
import { decodeDeclaration, encodeDeclaration } from "../../framework/declaration/decode.ts"
import { loadDeclaration } from "../../framework/declaration/load.ts"
import { repoRoot, sardine } from "../support/run-process.ts"

const paperFiles = [
  "full-unet",
  "lora-unet",
  "text-encoders-lora",
  "text-encoders-full",
  "vae-full",
  "vae-lora",
  "hybrid",
  "study",
  "lora-rank-sweep"
].map((name) => join(repoRoot, "experiments", "paper", `${name}.ts`))

describe("paper strategies round-trip through their canonical JSON", () => {
  for (const file of paperFiles) {
    it(file.split("/").slice(-1)[0]!, async () => {
      const loaded = await Effect.runPromise(loadDeclaration(file).pipe(Effect.provide(NodeContext.layer)))
      const json = canonicalJson(encodeDeclaration(loaded.declaration))
      const again = await Effect.runPromise(decodeDeclaration(JSON.parse(json)))
      expect(canonicalJson(encodeDeclaration(again))).toBe(json)
      expect(contentHash(encodeDeclaration(again))).toBe(contentHash(encodeDeclaration(loaded.declaration)))

      // The JSON form loads exactly like the module.
      const dir = await mkdtemp(join(tmpdir(), "sardine-roundtrip-"))
      const jsonFile = join(dir, "declaration.json")
      await writeFile(jsonFile, canonicalJsonPretty(encodeDeclaration(loaded.declaration)))
      const fromJson = await Effect.runPromise(loadDeclaration(jsonFile).pipe(Effect.provide(NodeContext.layer)))
      expect(canonicalJson(encodeDeclaration(fromJson.declaration))).toBe(json)
    })
  }

  it("the hybrid declares what the seed study's best strategy says", async () => {
    const { declaration } = await Effect.runPromise(loadDeclaration(paperFiles[6]!).pipe(Effect.provide(NodeContext.layer)))
    if (declaration.kind !== "experiment") throw new Error("expected an experiment")
    expect(declaration.components.unet._tag).toBe("full")
    expect(declaration.components.vae._tag).toBe("frozen")
    // One LoRA declared for both text encoders stays one in the explicit form; the adaptation gives it to each.
    expect(declaration.components.textEncoders).toMatchObject({ _tag: "lora", rank: 16, alpha: 16, targets: ["q_proj", "k_proj", "v_proj", "out_proj"] })
    const adaptation = resolveAdaptation(declaration.components, declaration.base.family)
    expect(adaptation.components.text_encoder).toEqual(adaptation.components.text_encoder_2)
    expect(adaptation.components.text_encoder_2).toMatchObject({ _tag: "lora", rank: 16, alpha: 16, scale: 1 })
    expect(declaration.components.token).toMatchObject({ token: "<SAR>", init: "radar", encoders: ["textEncoder", "textEncoder2"] })
  })

  it("`sardine show` output shows back to the same bytes and validates", async () => {
    const first = await sardine(["show", paperFiles[7]!])
    expect(first.code).toBe(0)
    const dir = await mkdtemp(join(tmpdir(), "sardine-show-"))
    const jsonFile = join(dir, "study.json")
    await writeFile(jsonFile, first.stdout)
    const second = await sardine(["show", jsonFile])
    expect(second.stdout).toBe(first.stdout)
    const valid = await sardine(["validate", jsonFile])
    expect(valid.code).toBe(0)
    expect(valid.stdout).toContain(`valid study "paper" (7 experiments)`)
    expect(await readFile(jsonFile, "utf8")).toBe(second.stdout)
  })
})
