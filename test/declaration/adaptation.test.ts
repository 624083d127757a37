import { Effect, Either, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { resolveAdaptation, ResolvedAdaptation, treatmentsOf } from "../../framework/declaration/adaptation.ts"
import { Components } from "../../framework/declaration/components.ts"
import { decodeDeclaration, encodeDeclaration } from "../../framework/declaration/decode.ts"
import { nearestPattern, patternMatcher, patternsAsRegex, segmentRuns, selectedParameters } from "../../framework/declaration/module-patterns.ts"
import { frozen, full, learnedToken, lora } from "../../framework/index.ts"
import { validExperiment } from "../support/declarations.ts"

const sdxl = { _tag: "diffusers", path: "models/tiny-xl", family: "sdxl" } as const

const hybrid = Schema.decodeUnknownSync(Components)({
  unet: full({ lr: 1e-5 }),
  textEncoders: { textEncoder: frozen(), textEncoder2: lora({ rank: 4, alpha: 8, lr: 5e-5, targets: ["q_proj"] }) },
  token: learnedToken({ token: "<SAR>", init: "radar", vectors: 2, lr: 5e-4, encoders: ["textEncoder2"] })
})

describe("the resolved adaptation", () => {
  it("names every component of an SDXL base by its folder and fills every default", () => {
    expect(resolveAdaptation(hybrid, "sdxl")).toEqual({
      components: {
        unet: { _tag: "full", lr: 1e-5, weightDecay: 0, only: ["*"] },
        vae: { _tag: "frozen" },
        text_encoder: { _tag: "frozen" },
        text_encoder_2: { _tag: "lora", rank: 4, alpha: 8, dropout: 0, targets: ["q_proj"], lr: 5e-5, scale: 2 }
      },
      token: {
        token: "<SAR>",
        init: "radar",
        vectors: 2,
        lr: 5e-4,
        normReprojection: false,
        spellings: ["<SAR>", "<SAR>_1"],
        encoders: ["text_encoder", "text_encoder_2"],
        trained: ["text_encoder_2"]
      }
    })
  })

  it("gives LoRA alpha = rank and each component's default targets; one text encoder on SD bases", () => {
    const adaptation = resolveAdaptation(
      Schema.decodeUnknownSync(Components)({ unet: lora({ rank: 8, lr: 1e-4 }), vae: frozen(), textEncoders: lora({ rank: 2, lr: 1e-4 }) }),
      "sd15"
    )
    expect(adaptation.components.unet).toMatchObject({ alpha: 8, scale: 1, targets: ["to_q", "to_k", "to_v", "to_out.0"] })
    expect(adaptation.components.text_encoder).toMatchObject({ alpha: 2, targets: ["q_proj", "k_proj", "v_proj", "out_proj"] })
    expect(adaptation.components.text_encoder_2).toBeUndefined()
    expect(adaptation.token).toBeNull()
    expect(treatmentsOf(adaptation).map(([name]) => name)).toEqual(["unet", "vae", "text_encoder"])
  })

  it("round-trips through JSON with the schema derived from the declaration's, which keeps its rules", () => {
    const adaptation = resolveAdaptation(hybrid, "sdxl")
    const decode = Schema.decodeUnknownEither(ResolvedAdaptation)
    expect(decode(JSON.parse(JSON.stringify(adaptation)))).toEqual(Either.right(adaptation))
    const withoutAlpha = {
      ...adaptation,
      components: { ...adaptation.components, text_encoder_2: { _tag: "lora", rank: 4, dropout: 0, targets: [], lr: 1, scale: 1 } }
    }
    expect(Either.isLeft(decode(withoutAlpha))).toBe(true)
    const rankZero = { ...adaptation, components: { ...adaptation.components, text_encoder_2: { ...adaptation.components.text_encoder_2, rank: 0 } } }
    expect(String(Either.flip(decode(rankZero)).pipe(Either.getOrThrow))).toContain("must be an integer ≥ 1 (got 0)")
  })
})

describe("normalisation shows every default in the declared form", () => {
  it("keeps one treatment for every text encoder, with LoRA alpha and targets filled and no scale; it round-trips", async () => {
    const declaration = await Effect.runPromise(decodeDeclaration(validExperiment({
      base: sdxl,
      components: { unet: full({ lr: 1e-4, only: ["attn1", "attn2"] }), textEncoders: lora({ rank: 4, lr: 1e-4 }) }
    })))
    const encoded = encodeDeclaration(declaration) as { components: unknown }
    expect(encoded.components).toEqual({
      unet: { _tag: "full", lr: 1e-4, weightDecay: 0, only: ["attn1", "attn2"] },
      vae: { _tag: "frozen" },
      textEncoders: { _tag: "lora", rank: 4, alpha: 4, dropout: 0, targets: ["q_proj", "k_proj", "v_proj", "out_proj"], lr: 1e-4 }
    })
    const again = await Effect.runPromise(decodeDeclaration(JSON.parse(JSON.stringify(encodeDeclaration(declaration)))))
    expect(again).toEqual(declaration)
  })

  it("refuses an empty `only` and a pattern that is not a dotted module name", async () => {
    const result = await Effect.runPromise(Effect.either(decodeDeclaration(validExperiment({
      components: { unet: full({ lr: 1e-4, only: [] }), vae: lora({ rank: 2, lr: 1e-4, targets: ["conv1", "to out"] }) }
    }))))
    if (Either.isRight(result)) throw new Error("expected the declaration to be rejected")
    expect(result.left.lines).toEqual([
      "components.unet.only: must list at least one pattern",
      `components.vae.targets.1: must be a dotted module name of letters, digits, '_' and '*', such as "attn1", "to_out.0" or "down_blocks.*.attentions" (got "to out")`
    ])
  })
})

describe("module-name patterns", () => {
  const names = [
    "conv_in.weight",
    "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight",
    "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.weight",
    "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.bias",
    "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
    "down_blocks.0.attentions.0.transformer_blocks.0.norm1.weight",
    "mid_block.resnets.0.conv1.weight"
  ]

  it("match the last segments of a name, one for one, with * inside a segment", () => {
    expect(patternMatcher("to_out.0")("a.attn1.to_out.0")).toBe(true)
    expect(patternMatcher("to_out.0")("a.attn1.to_out.1")).toBe(false)
    expect(patternMatcher("to_q")("a.to_qk")).toBe(false)
    expect(patternMatcher("attn*.to_q")("a.attn2.to_q")).toBe(true)
    expect(patternMatcher("down_blocks.*.attentions.0.transformer_blocks.0.attn1.to_q")("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q")).toBe(
      true
    )
    expect(patternMatcher("a.b.c")("b.c")).toBe(false)
  })

  it("select the parameters of matched modules, or matched parameters themselves", () => {
    expect([...selectedParameters(names, ["attn1"])]).toEqual(names.slice(1, 4))
    expect([...selectedParameters(names, ["bias"])]).toEqual([names[3]])
    expect([...selectedParameters(names, ["norm*.weight", "mid_block"])]).toEqual([names[5], names[6]])
    expect([...selectedParameters(names, ["*"])]).toEqual(names)
    expect([...selectedParameters(names, ["atn1"])]).toEqual([])
  })

  it("with globs, become the regular expression PEFT full-matches against module names, selecting the same modules", () => {
    const modules = [...new Set(names.map((n) => n.split(".").slice(0, -1).join(".")))]
    const targets = ["attn*.to_q", "to_out.0", "conv*"]
    const regex = new RegExp(`^(?:${patternsAsRegex(targets)})$`)
    expect(modules.filter((m) => regex.test(m))).toEqual(modules.filter((m) => targets.some((t) => patternMatcher(t)(m))))
    expect(modules.filter((m) => regex.test(m))).toEqual([
      "conv_in",
      "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
      "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0",
      "mid_block.resnets.0.conv1"
    ])
  })

  it("suggest the nearest name for a mistyped one", () => {
    expect(nearestPattern("atn1", segmentRuns(names, 1))).toBe("attn1")
    expect(nearestPattern("to_ot.0", segmentRuns(names, 2))).toBe("to_out.0")
    expect(nearestPattern("something_else", segmentRuns(names, 1))).toBeUndefined()
  })
})
