import { Effect, Exit } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, expect, it } from "vitest"
import { AutoencoderKlConfig, decodeAutoencoderKlConfig } from "../../adapters/tfjs/autoencoder-kl.ts"
import { ClipModelConfig, decodeClipModelConfig } from "../../adapters/tfjs/clip-model.ts"
import { ClipTextConfig } from "../../adapters/tfjs/clip-text-model.ts"
import { ClipVisionConfig } from "../../adapters/tfjs/clip-vision-model.ts"
import { ControlNetConfig } from "../../adapters/tfjs/controlnet.ts"
import { DdimConfig } from "../../adapters/tfjs/schedulers/ddim.ts"
import { DdpmConfig } from "../../adapters/tfjs/schedulers/ddpm.ts"
import { DpmSolverMultistepConfig } from "../../adapters/tfjs/schedulers/dpm-solver-multistep.ts"
import { EulerAncestralConfig } from "../../adapters/tfjs/schedulers/euler-ancestral.ts"
import { EulerConfig } from "../../adapters/tfjs/schedulers/euler.ts"
import { HeunConfig } from "../../adapters/tfjs/schedulers/heun.ts"
import { UniPcMultistepConfig } from "../../adapters/tfjs/schedulers/unipc-multistep.ts"
import { decodeUnet2DConditionConfig, Unet2DConditionConfig } from "../../adapters/tfjs/unet2d-condition.ts"
import { schedulerInitKeys } from "../../adapters/tfjs/scheduler-init-keys.ts"
import { ignoredConfigKeys, pinnedVersions } from "../../adapters/tfjs/unknown-config-keys.ts"
import { repoRoot } from "../support/run-process.ts"

/**
 * sardine's config schemas ignore keys they do not name, as diffusers ignores keys its classes do not take.
 * So that no key the pinned diffusers / transformers do read is ignored by sardine, every constructor
 * parameter of those classes (tools/make_config_key_goldens.py) must be a field of sardine's schema for
 * the same config: implemented, or refused unless it holds the value sardine computes with.
 */

const goldens = JSON.parse(readFileSync(join(repoRoot, "test/fixtures/config-keys.json"), "utf8")) as {
  readonly versions: Readonly<Record<string, string>>
  readonly classes: Readonly<Record<string, ReadonlyArray<string>>>
  readonly ignored: Readonly<Record<string, ReadonlyArray<string>>>
  readonly schedulers: Readonly<Record<string, ReadonlyArray<string>>>
}

const schemas: Record<string, { readonly fields: Readonly<Record<string, unknown>> }> = {
  UNet2DConditionModel: Unet2DConditionConfig,
  AutoencoderKL: AutoencoderKlConfig,
  ControlNetModel: ControlNetConfig,
  DDPMScheduler: DdpmConfig,
  DDIMScheduler: DdimConfig,
  EulerDiscreteScheduler: EulerConfig,
  EulerAncestralDiscreteScheduler: EulerAncestralConfig,
  HeunDiscreteScheduler: HeunConfig,
  DPMSolverMultistepScheduler: DpmSolverMultistepConfig,
  UniPCMultistepScheduler: UniPcMultistepConfig,
  CLIPTextConfig: ClipTextConfig,
  CLIPVisionConfig: ClipVisionConfig,
  CLIPConfig: ClipModelConfig
}

describe("config keys", () => {
  it("covers the same classes as the goldens", () => {
    expect(Object.keys(schemas).sort()).toEqual(Object.keys(goldens.classes).sort())
  })

  it.each(Object.keys(schemas))("every key %s takes is one sardine's schema names", (name) => {
    const schema = schemas[name]
    const keys = goldens.classes[name]
    assert.isDefined(schema, name)
    assert.isDefined(keys, `${name} in the goldens`)
    const fields = Object.keys(schema.fields)
    expect(keys.filter((key) => !fields.includes(key))).toEqual([])
  })

  it("the keys the tfjs engine lets pass unnamed are those the pinned libraries ignore by themselves, for the same versions", () => {
    expect(pinnedVersions).toEqual(goldens.versions)
    expect(ignoredConfigKeys).toEqual(goldens.ignored)
    // And, for a scheduler config saved by another class, that class's keys.
    expect(schedulerInitKeys).toEqual(goldens.schedulers)
  })

  it("a CLIPModel config (the scorer's, the CLIP trainer's) refuses, naming file and key, a key of any level no one reads", async () => {
    const tinyClip = JSON.parse(readFileSync(join(repoRoot, "test/fixtures/clip-model/tiny-clip/config.json"), "utf8")) as Record<
      string,
      Record<string, unknown>
    >
    const decoded = async (json: unknown) => {
      const exit = await Effect.runPromiseExit(decodeClipModelConfig(json, "clip/config.json"))
      return Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error.message : "accepted"
    }
    expect(await decoded(tinyClip)).toBe("accepted")
    const withNewKeys = {
      ...tinyClip,
      logit_bias_init_value: -10,
      text_config: { ...tinyClip.text_config, rope_theta: 10000 },
      vision_config: { ...tinyClip.vision_config, use_rope: true }
    }
    const refusal = (key: string, className: string) =>
      `${key}: the tfjs engine refuses a key it would ignore: ${className} of the pinned transformers 5.24.0 takes no such key ` +
      "(a newer version's option?); remove it, or use a config transformers 5.24.0 writes"
    expect(await decoded(withNewKeys)).toBe(
      `clip/config.json: ${refusal("logit_bias_init_value", "CLIPConfig")}; ${refusal("text_config.rope_theta", "CLIPTextConfig")}; ` +
        refusal("vision_config.use_rope", "CLIPVisionConfig")
    )
    // What transformers 4 wrote in each tower of a config saved whole (openai/clip-vit-base-patch32's), which the pinned one keeps unread.
    const transformers4 = { dropout: 0.0, is_decoder: false, pruned_heads: {}, tie_word_embeddings: true, num_beams: 1, top_k: 50, use_bfloat16: false }
    const savedWhole = {
      ...tinyClip,
      text_config_dict: null,
      text_config: { ...tinyClip.text_config, ...transformers4 },
      vision_config: { ...tinyClip.vision_config, ...transformers4 }
    }
    expect(await decoded(savedWhole)).toBe("accepted")
    // The pinned transformers applies a tower's *_config_dict over it; the tfjs engine does not.
    expect(await decoded({ ...tinyClip, vision_config_dict: { hidden_size: 48 } })).toMatch(
      /^clip\/config\.json: vision_config_dict: sardine supports only null/
    )
    expect(await decoded({ ...tinyClip, vision_config: { ...tinyClip.vision_config, attention_dropout: 0.1 } })).toMatch(
      /^clip\/config\.json: vision_config\.attention_dropout: sardine supports only 0/
    )
  })

  it("a key that changes the computation is refused unless it has sardine's value, naming file and field", async () => {
    const refused = async (exit: Promise<Exit.Exit<unknown, { readonly message: string }>>) => {
      const result = await exit
      return Exit.isFailure(result) && result.cause._tag === "Fail" ? result.cause.error.message : "accepted"
    }
    expect(await refused(Effect.runPromiseExit(decodeUnet2DConditionConfig({ dropout: 0.1 }, "unet/config.json")))).toMatch(
      /^unet\/config\.json: dropout: sardine supports only 0 \(the tfjs engine's ResNet blocks have no dropout\)/
    )
    expect(await refused(Effect.runPromiseExit(decodeUnet2DConditionConfig({ dropout: 0.0, resnet_out_scale_factor: 1.0 }, "unet/config.json"))))
      .toBe("accepted")
    expect(await refused(Effect.runPromiseExit(decodeAutoencoderKlConfig({ latents_mean: [0, 0, 0, 0] }, "vae/config.json")))).toMatch(
      /^vae\/config\.json: latents_mean: sardine supports only null/
    )
  })
})
