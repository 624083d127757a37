import { Effect } from "effect"
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { configRefusals } from "../../adapters/tfjs/config-refusals.ts"
import { type Sampler, schedulerClasses } from "../../framework/declaration/generation.ts"
import type { SamplerDeclaration } from "../../framework/services/model-architecture.ts"
import { repoRoot } from "../support/run-process.ts"

/**
 * Plan-time config refusals when a config file is there but cannot be read: refused, naming the file and
 * why (no "run it with --engine torch" hint: diffusers cannot read it either), on both engines; a base not
 * there yet (still to download) is not a refusal. Cost: < 1 s.
 */

const fixtures = join(import.meta.dirname, "..", "fixtures")
const tiny = join(fixtures, "pipelines", "sd1-tiny")
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

/**
 * A key the tfjs engine's schema for a config does not name, and the pinned library does not ignore by itself
 * (a newer diffusers' option, which the pinned one would ignore with a warning), is refused on a tfjs plan,
 * and on a torch plan (which hands the configs to the pinned libraries), naming the file, the key and the engine;
 * every config this repository ships loads. Cost: < 2 s.
 */
describe("config keys the pinned libraries do not take", () => {
  const withKey = (base: string, file: string, extra: Record<string, unknown>) => {
    const path = join(base, file)
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, "utf8")), ...extra }))
    return path
  }

  it("are refused on either engine, one line per key naming the file, the key and the engine", async () => {
    const base = copyOfTiny()
    const unet = withKey(base, "unet/config.json", { attention_sink_tokens: 4 })
    const scheduler = withKey(base, "scheduler/scheduler_config.json", { timestep_jitter: 0.1 })
    const text = withKey(base, "text_encoder/config.json", { rope_theta: 10000 })
    const refusals = await Effect.runPromise(configRefusals("tfjs", { base }, sampler))
    expect(refusals).toEqual([
      {
        field: "base",
        reason: `${unet}: attention_sink_tokens: the tfjs engine refuses a key it would ignore: UNet2DConditionModel of the pinned diffusers 0.42.1 ` +
          "takes no such key (a newer version's option?); remove it, or use a config diffusers 0.42.1 writes"
      },
      {
        field: "base",
        reason: `${text}: rope_theta: the tfjs engine refuses a key it would ignore: CLIPTextConfig of the pinned transformers 5.24.0 ` +
          "takes no such key (a newer version's option?); remove it, or use a config transformers 5.24.0 writes"
      },
      {
        field: "base",
        reason: `${scheduler}: timestep_jitter: the tfjs engine refuses a key it would ignore: EulerDiscreteScheduler of the pinned diffusers ` +
          "0.42.1 takes no such key (a newer version's option?); remove it, or use a config diffusers 0.42.1 writes"
      }
    ])
    // The torch engine hands the configs to the pinned diffusers / transformers, which would ignore them too.
    expect(await Effect.runPromise(configRefusals("torch", { base }, sampler))).toEqual(
      refusals.map((r) => ({ ...r, reason: r.reason.replace("the tfjs engine refuses", "the torch engine refuses") }))
    )
  })

  it("in a ControlNet folder, are refused under conditioning.init", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sardine-config-refusals-"))
    made.push(dir)
    cpSync(join(fixtures, "controlnet", "sd1-controlnet"), dir, { recursive: true })
    const file = withKey(dir, "config.json", { conditioning_dropout: 0.1 })
    expect(await Effect.runPromise(configRefusals("tfjs", { base: tiny, controlNet: dir }, sampler))).toEqual([{
      field: "conditioning.init",
      reason: `${file}: conditioning_dropout: the tfjs engine refuses a key it would ignore: ControlNetModel of the pinned diffusers 0.42.1 ` +
        "takes no such key (a newer version's option?); remove it, or use a config diffusers 0.42.1 writes"
    }])
    expect((await Effect.runPromise(configRefusals("torch", { base: tiny, controlNet: dir }, sampler))).map((r) => r.reason)).toEqual([
      `${file}: conditioning_dropout: the torch engine refuses a key it would ignore: ControlNetModel of the pinned diffusers 0.42.1 ` +
      "takes no such key (a newer version's option?); remove it, or use a config diffusers 0.42.1 writes"
    ])
  })

  it("private keys, and keys diffusers drops itself (another scheduler's, in the same sampler's config) pass", async () => {
    const base = copyOfTiny()
    withKey(base, "unet/config.json", { _name_or_path: "somewhere", _use_default_values: ["dropout"] })
    // DPM-Solver's keys in a config saved by it: EulerDiscreteScheduler.from_config drops them without a warning.
    withKey(base, "scheduler/scheduler_config.json", { _class_name: "DPMSolverMultistepScheduler", solver_order: 2, lower_order_final: true })
    expect(await Effect.runPromise(configRefusals("tfjs", { base }, sampler))).toEqual([])
  })

  it("the keys of the scheduler class a config names pass with another sampler (diffusers drops them); a class without them does not", async () => {
    const base = copyOfTiny()
    // An LCM base: EulerDiscreteScheduler.from_config drops LCMScheduler's own keys (not among Euler's compatibles) without a warning.
    const scheduler = withKey(base, "scheduler/scheduler_config.json", { _class_name: "LCMScheduler", original_inference_steps: 50, timestep_scaling: 10 })
    expect(await Effect.runPromise(configRefusals("tfjs", { base }, sampler))).toEqual([])
    withKey(base, "scheduler/scheduler_config.json", { _class_name: "PNDMScheduler" })
    expect((await Effect.runPromise(configRefusals("tfjs", { base }, sampler))).map((r) => r.reason.split(": the tfjs engine")[0])).toEqual([
      `${scheduler}: original_inference_steps`,
      `${scheduler}: timestep_scaling`
    ])
  })

  it("every pipeline and ControlNet config this repository ships loads with every sampler, on either engine", async () => {
    const pipelines = [
      "experiments/architectures/sdxl",
      "experiments/demo/architecture",
      "experiments/demo/base",
      "test/fixtures/demo-base/init-sd",
      "test/fixtures/demo-base/init-sdxl",
      "test/fixtures/pipelines/sd1-tiny",
      "test/fixtures/pipelines/sdxl-tiny",
      "test/fixtures/pipelines/sdxl-tiny-controlnet"
    ]
    const samplers = Object.keys(schedulerClasses) as ReadonlyArray<Sampler>
    for (const engine of ["tfjs", "torch"] as const) {
      const refused = await Effect.runPromise(
        Effect.forEach(
          pipelines.flatMap((folder) => samplers.map((s) => [folder, s] as const)),
          ([folder, s]) => configRefusals(engine, { base: join(repoRoot, folder) }, { sampler: s, steps: 4, eta: 0 })
        )
      )
      expect(refused.flat(), engine).toEqual([])
      for (const controlNet of ["sd1-controlnet", "sdxl-controlnet"]) {
        expect(await Effect.runPromise(configRefusals(engine, { base: tiny, controlNet: join(fixtures, "controlnet", controlNet) }, sampler)), engine)
          .toEqual([])
      }
    }
  })
})
