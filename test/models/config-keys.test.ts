import { Effect, Exit } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { assert, describe, expect, it } from "vitest"
import { AutoencoderKlConfig, decodeAutoencoderKlConfig } from "../../adapters/tfjs/autoencoder-kl.ts"
import { ClipTextConfig } from "../../adapters/tfjs/clip-text-model.ts"
import { ControlNetConfig } from "../../adapters/tfjs/controlnet.ts"
import { DdimConfig } from "../../adapters/tfjs/schedulers/ddim.ts"
import { DdpmConfig } from "../../adapters/tfjs/schedulers/ddpm.ts"
import { DpmSolverMultistepConfig } from "../../adapters/tfjs/schedulers/dpm-solver-multistep.ts"
import { EulerAncestralConfig } from "../../adapters/tfjs/schedulers/euler-ancestral.ts"
import { EulerConfig } from "../../adapters/tfjs/schedulers/euler.ts"
import { HeunConfig } from "../../adapters/tfjs/schedulers/heun.ts"
import { UniPcMultistepConfig } from "../../adapters/tfjs/schedulers/unipc-multistep.ts"
import { decodeUnet2DConditionConfig, Unet2DConditionConfig } from "../../adapters/tfjs/unet2d-condition.ts"
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
  CLIPTextConfig: ClipTextConfig
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
