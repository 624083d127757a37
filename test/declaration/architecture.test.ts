import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { ModelArchitectureLive } from "../../adapters/tfjs/model-architecture-live.ts"
import { architectureIssues } from "../../framework/declaration/architecture-rules.ts"
import { formatIssue } from "../../framework/declaration/decode.ts"
import { loadDeclaration } from "../../framework/declaration/load.ts"
import { diffusers, frozen, full, lora, study } from "../../framework/index.ts"
import { validExperiment } from "../support/declarations.ts"
import { repoRoot, sardine } from "../support/run-process.ts"

/**
 * `only` patterns, LoRA targets and the base's components checked against the real architecture (the
 * fixture pipelines' configs) before anything runs, each problem with its path and the nearest name.
 */

const tinySdxl = `${repoRoot}/test/fixtures/pipelines/sdxl-tiny`

const lines = async (input: unknown) => {
  const dir = await mkdtemp(join(tmpdir(), "sardine-architecture-"))
  const file = join(dir, "declaration.json")
  await writeFile(file, JSON.stringify(input))
  return Effect.runPromise(
    Effect.gen(function*() {
      const check = yield* architectureIssues(yield* loadDeclaration(file).pipe(Effect.provide(NodeContext.layer)))
      return { issues: check.issues.map(formatIssue), unchecked: check.unchecked }
    }).pipe(Effect.provide(ModelArchitectureLive))
  )
}

describe("declarations checked against the base's architecture", () => {
  it("an `only` pattern that selects no parameter, with the nearest module name", async () => {
    expect((await lines(validExperiment({ components: { unet: full({ lr: 1e-4, only: ["attn1", "atn2"] }) } }))).issues).toEqual([
      "components.unet.only.1: \"atn2\" matches no parameter of the unet (did you mean \"attn2\"?)"
    ])
  })

  it("LoRA targets that match no Linear or Conv2d module, in every encoder the one treatment covers, at plan time", async () => {
    const result = await lines(validExperiment({
      base: diffusers(tinySdxl, { family: "sdxl" }),
      components: { unet: lora({ rank: 2, lr: 1e-4, targets: ["to_q", "attn1"] }), textEncoders: lora({ rank: 2, lr: 1e-4, targets: ["q_proj", "k_prj"] }) }
    }))
    expect(result.issues).toEqual([
      "components.unet.targets.1: \"attn1\" matches no Linear or Conv2d module of the unet (it names modules that hold some, such as \"attn1.to_q\": name those)",
      "components.textEncoders.targets.1: \"k_prj\" matches no Linear or Conv2d module of the text_encoder (did you mean \"k_proj\"?)",
      "components.textEncoders.targets.1: \"k_prj\" matches no Linear or Conv2d module of the text_encoder_2 (did you mean \"k_proj\"?)"
    ])
  })

  it("patterns that match, globs included, pass; an SDXL folder declared as sd15 does not", async () => {
    expect(
      (await lines(validExperiment({
        components: { unet: full({ lr: 1e-4, only: ["down_blocks.*.attentions", "bias"] }), textEncoders: lora({ rank: 2, lr: 1e-4, targets: ["*_proj"] }) }
      }))).issues
    ).toEqual([])
    expect((await lines(validExperiment({ base: diffusers(tinySdxl, { family: "sd15" }) }))).issues).toEqual([
      `base.family: "sd15" bases have text_encoder, but ${tinySdxl} also has text_encoder_2 (is it an SDXL base?)`
    ])
  })

  it("in a study, the path names the experiment; a base that is not there is listed as unchecked, not an error", async () => {
    const result = await lines(study({
      name: "s",
      experiments: [
        validExperiment({ name: "a", base: diffusers("/nowhere/sdxl", { family: "sdxl" }) }),
        validExperiment({ name: "b", components: { unet: frozen(), vae: full({ lr: 1e-4, only: ["decoder.up_blocks", "encoder.mid_blok"] }) } })
      ]
    }))
    expect(result.issues).toEqual([
      "experiments.1.components.vae.only.1: \"encoder.mid_blok\" matches no parameter of the vae (did you mean \"encoder.mid_block\"?)"
    ])
    expect(result.unchecked).toEqual([{ folder: "/nowhere/sdxl", why: expect.stringMatching(/model_index\.json/) }])
  })

  it("`sardine validate` and `sardine plan` print the problem with its path and exit 1", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sardine-architecture-"))
    const file = join(dir, "bad.json")
    await writeFile(file, JSON.stringify(validExperiment({ components: { unet: full({ lr: 1e-4, only: ["atn1"] }) } })))
    for (const command of ["validate", "plan"]) {
      const result = await sardine([command, file])
      expect(result.code, result.stderr).toBe(1)
      expect(result.stderr).toContain("components.unet.only.0: \"atn1\" matches no parameter of the unet (did you mean \"attn1\"?)")
    }
  })
})
