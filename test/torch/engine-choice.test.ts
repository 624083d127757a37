import { NodeContext } from "@effect/platform-node"
import { Effect, Exit, Layer, Schema } from "effect"
import { cp, mkdir, open, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { WeightsLive } from "../../adapters/safetensors/weights-listing.ts"
import { EngineEnvironmentsLive } from "../../adapters/torch/python-environment.ts"
import { resolveAdaptation } from "../../framework/declaration/adaptation.ts"
import { decodeDeclaration } from "../../framework/declaration/decode.ts"
import { diffusers, frozen, study } from "../../framework/index.ts"
import { compilePlan } from "../../framework/plan/compile.ts"
import { checkEngineSupport, chosenEngine, EngineUnsupported } from "../../framework/plan/engine-support.ts"
import { Engine, EngineEnvironments } from "../../framework/services/engine.ts"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { engineLayer } from "../../adapters/tfjs/engine-live.ts"
import { BaseModel } from "../../framework/declaration/base-model.ts"
import { components, temporaryFolder, training } from "../training/training-run.ts"
import { validExperiment } from "../support/declarations.ts"
import { referencePython } from "../support/reference-python.ts"
import { repoRoot, sardine } from "../support/run-process.ts"
import { ModelArchitectureLive } from "../../adapters/tfjs/model-architecture-live.ts"

/**
 * Choosing the engine: it is part of the keys of the steps it computes (only those), `--engine` wins over
 * the declaration's `engine`, `auto` follows the torch engine's Python, and each engine refuses at
 * validate / plan time, naming the field and the engine, what it cannot do. Cost: ≈ 30 s (three CLI
 * starts, two torch environment checks).
 */

const decode = (input: unknown) => Effect.runPromise(decodeDeclaration(input))
const demoBase = join(repoRoot, "experiments/demo/base")
const services = Layer.mergeAll(EngineEnvironmentsLive, WeightsLive, ModelArchitectureLive, NodeContext.layer)
/** A stand-in for a machine where the torch engine has no Python (this checkout has .venv, so it cannot be made here). */
const torchNotConfiguredStandIn = Layer.succeed(EngineEnvironments, {
  torchConfigured: Effect.succeed(false),
  torch: Effect.die("not asked"),
  setupTorch: () => Effect.die("not asked")
})

const problemsOf = async (declaration: unknown, engine: "tfjs" | "torch", resolvePath = (p: string) => p) => {
  const exit = await Effect.runPromiseExit(Effect.provide(checkEngineSupport(await decode(declaration), engine, resolvePath), services))
  if (Exit.isSuccess(exit)) return []
  const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  expect(error).toBeInstanceOf(EngineUnsupported)
  return (error as EngineUnsupported).problems
}

describe("choosing the engine", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  const previous = process.env.SARDINE_PYTHON
  beforeAll(async () => {
    folder = await temporaryFolder("engine-choice")
    process.env.SARDINE_PYTHON = referencePython()
  })
  afterAll(async () => {
    if (previous === undefined) delete process.env.SARDINE_PYTHON
    else process.env.SARDINE_PYTHON = previous
    await folder.remove()
  })

  it("is part of the keys of the steps it computes, and only of those", async () => {
    const declaration = await decode(validExperiment())
    const [tfjs, torch] = [compilePlan(declaration, new Map(), "tfjs"), compilePlan(declaration, new Map(), "torch")]
    const key = (plan: typeof tfjs, id: string) => plan.steps.find((s) => s.id === id)!.key
    for (const id of ["tiny/reference", "tiny/data"]) expect(key(torch, id), id).toBe(key(tfjs, id))
    for (const id of ["tiny/latents", "tiny/text", "tiny/train", "tiny/generate", "tiny/evaluate"]) expect(key(torch, id), id).not.toBe(key(tfjs, id))
    expect(torch.steps.find((s) => s.id === "tiny/train")!.config).toMatchObject({ engine: "torch" })
    // The tfjs engine's configs name no engine: their keys are those of before the choice existed.
    expect(tfjs.steps.every((s) => !("engine" in s.config))).toBe(true)
    expect(compilePlan(declaration)).toEqual(tfjs)
  })

  it("--engine wins over the declaration's engine, which wins over tfjs; auto is torch when its Python is configured", async () => {
    const declared = await decode({ ...study({ name: "s", engine: "torch", experiments: [validExperiment()] }) })
    const plain = await decode(validExperiment())
    const choose = (declaration: typeof plain, option?: "tfjs" | "torch" | "auto") =>
      Effect.runPromise(Effect.provide(chosenEngine(declaration, option), services))
    expect(await choose(plain)).toBe("tfjs")
    expect(await choose(declared)).toBe("torch")
    expect(await choose(declared, "tfjs")).toBe("tfjs")
    expect(await choose(plain, "auto")).toBe("torch")
    expect(await Effect.runPromise(Effect.provide(chosenEngine(plain, "auto"), torchNotConfiguredStandIn))).toBe("tfjs")
  })

  it("the tfjs engine refuses what it cannot do, naming each field and the engine; the torch engine takes it", async () => {
    const asks = validExperiment({
      train: { steps: 4, seed: 1, gradientCheckpointing: true, validationPrompts: ["SAR image of a port"], precision: "bf16", optimizer: { _tag: "adamw8bit" } }
    })
    expect(await problemsOf(asks, "tfjs")).toEqual([
      "train.gradientCheckpointing: the tfjs engine has no gradient checkpointing (it keeps every activation); run it with --engine torch, or remove it",
      "train.validationPrompts: the tfjs engine does not sample during training (the generate step samples the declared prompts); run it with --engine torch, or remove them",
      "train.precision: the tfjs engine computes in fp32 only (got \"bf16\"); run it with --engine torch, or declare \"fp32\"",
      "train.optimizer: 8-bit AdamW (bitsandbytes) needs the torch engine; run it with --engine torch, or declare adamw"
    ])
    // This environment has no bitsandbytes and no GPU: the torch engine says so for 8-bit AdamW and fp16.
    expect(await problemsOf(asks, "torch")).toEqual([
      `train.optimizer: adamw8bit needs bitsandbytes, which the torch engine's Python (${referencePython()}) cannot import; install it there, or declare adamw`
    ])
    const fp16 = validExperiment({ train: { steps: 4, seed: 1, precision: "fp16" } })
    expect(await problemsOf(fp16, "torch")).toEqual([
      "train.precision: fp16 mixed precision needs a CUDA device; the torch engine computes on cpu here: declare \"bf16\" or \"fp32\""
    ])
    expect(await problemsOf(validExperiment({ train: { steps: 4, seed: 1, gradientCheckpointing: true, precision: "bf16" } }), "torch")).toEqual([])
  }, 120_000)

  it("the tfjs engine's trainer refuses the same when called without a plan, never ignoring a field", async () => {
    const exit = await Effect.runPromiseExit(Effect.provide(
      Effect.flatMap(Engine, (engine) =>
        engine.train({
          base: { base: Schema.decodeUnknownSync(BaseModel)(diffusers(demoBase, { family: "tiny" })), path: demoBase },
          adaptation: resolveAdaptation(components({ unet: { _tag: "full", lr: 1e-3 } }), "tiny"),
          train: training({ steps: 1, gradientCheckpointing: true, precision: "bf16" }),
          dataDir: join(folder.dir, "no-data"),
          workDir: join(folder.dir, "no-work"),
          progress: () => Effect.void,
          metrics: () => Effect.void,
          log: () => Effect.void
        })),
      engineLayer({ backend: "cpu" }).pipe(Layer.provide(ImageIOLive))
    ))
    expect(String(Exit.isFailure(exit) ? exit.cause : "")).toMatch(
      /train\.gradientCheckpointing: the tfjs engine has no gradient checkpointing.*; train\.precision: the tfjs engine computes in fp32 only \(got "bf16"\)/
    )
  }, 120_000)

  it("refuses an SDXL-size base on tfjs, saying to use --engine torch", async () => {
    // A UNet of 2.5 G float32 parameters: the header says so, the 10 GB of data are a sparse file's holes.
    const base = join(folder.dir, "huge")
    await mkdir(join(base, "unet"), { recursive: true })
    const bytes = 50_000 * 50_000 * 4
    const header = Buffer.from(JSON.stringify({ "conv_in.weight": { dtype: "F32", shape: [50_000, 50_000], data_offsets: [0, bytes] } }))
    const prefix = Buffer.alloc(8)
    prefix.writeBigUInt64LE(BigInt(header.length))
    await writeFile(join(base, "unet", "config.json"), "{}")
    const file = await open(join(base, "unet", "diffusion_pytorch_model.safetensors"), "w")
    await file.write(Buffer.concat([prefix, header]))
    await file.truncate(8 + header.length + bytes)
    await file.close()
    const declaration = validExperiment({ base: diffusers(base, { family: "sdxl" }), components: { unet: frozen() }, baseline: true, train: undefined })
    const problems = await problemsOf(declaration, "tfjs")
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(new RegExp(`^base: the UNet of ${base} has 2\\.50 G parameters \\(SDXL size\\); .* run it with --engine torch$`))
  })

  it("refuses at plan time a base's config value the tfjs engine cannot build, naming file and field; the torch engine (diffusers) takes it", async () => {
    // The demo base's configs (no weights needed) with a UNet option and a DDIM option sardine's models lack.
    const base = join(folder.dir, "unbuildable")
    await cp(demoBase, base, { recursive: true, filter: (source) => !source.endsWith(".safetensors") })
    const edit = async (file: string, change: Record<string, unknown>) =>
      writeFile(join(base, file), JSON.stringify({ ...JSON.parse(await readFile(join(base, file), "utf8")), ...change }))
    const declaration = validExperiment({
      base: diffusers(base, { family: "tiny" }),
      generate: { prompts: ["SAR image of a field"], sampler: "ddim", steps: 4 }
    })
    expect(await problemsOf(declaration, "tfjs")).toEqual([])
    await edit("unet/config.json", { encoder_hid_dim_type: "text_proj" })
    await edit("scheduler/scheduler_config.json", { thresholding: true })
    const refusals = await problemsOf(declaration, "tfjs")
    expect(refusals).toEqual([
      expect.stringMatching(
        new RegExp(`^base: ${join(base, "unet", "config.json")}: encoder_hid_dim_type: sardine supports only null .*run it with --engine torch`)
      ),
      expect.stringMatching(
        new RegExp(`^base: ${join(base, "scheduler", "scheduler_config.json")}: thresholding: sardine supports only false .*--engine torch`)
      )
    ])
    // The same option under a sampler whose diffusers class does not read it is no refusal (diffusers ignores it too).
    expect(await problemsOf({ ...declaration, generate: { prompts: ["SAR image of a field"], sampler: "euler", steps: 4 } }, "tfjs")).toHaveLength(1)
    expect(await problemsOf(declaration, "torch")).toEqual([])
    // Per-channel latent standardisation (diffusers' SDXL pipelines read it): neither engine applies it, both refuse it.
    await edit("vae/config.json", { latents_mean: [0, 0, 0, 0] })
    expect(await problemsOf(declaration, "tfjs")).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^base: ${
            join(base, "vae", "config.json")
          }: latents_mean: sardine supports only null .*: neither engine applies it \\(the torch engine .*\\); use a VAE without it$`
        )
      )
    )
    expect(await problemsOf(declaration, "torch")).toEqual([
      `base: ${join(base, "vae", "config.json")}: latents_mean: the torch engine encodes and decodes latents with scaling_factor only ` +
      "(its worker has no per-channel latent standardisation); use a VAE without it"
    ])
    // A shift that training would apply and decoding (as diffusers' SD / SDXL pipelines do) would not undo.
    await edit("vae/config.json", { latents_mean: null, shift_factor: 0.1159 })
    const shifted = new RegExp(`^base: ${join(base, "vae", "config.json")}: shift_factor: `)
    // Refused by both engines: the tfjs refusal does not send the user to the torch engine.
    expect(await problemsOf(declaration, "tfjs")).toContainEqual(expect.stringMatching(new RegExp(`${shifted.source}.*: neither engine applies it`)))
    expect(await problemsOf(declaration, "torch")).toEqual([expect.stringMatching(shifted)])
  }, 120_000)

  it("on the command line: validate names the field and the engine; plan says which engine and where train-clip runs", async () => {
    const file = join(folder.dir, "checkpointing.json")
    await writeFile(file, JSON.stringify(validExperiment({ train: { steps: 4, seed: 1, gradientCheckpointing: true } })))
    const refused = await sardine(["validate", file])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain(
      "error: the tfjs engine cannot run this declaration:\n  train.gradientCheckpointing: the tfjs engine has no gradient checkpointing"
    )
    const accepted = await sardine(["validate", file, "--engine", "torch"])
    expect(accepted.stdout).toContain(`valid experiment "tiny" on the torch engine`)
    const clip = await sardine(["plan", join(repoRoot, "experiments/demo/sar-clip.ts"), "--engine", "torch", "--cache-dir", join(folder.dir, "cache")])
    expect(clip.code, clip.stderr).toBe(0)
    expect(clip.stdout).toContain("engine: torch\nnote: train-clip runs on the tfjs engine: the torch engine has no CLIP trainer")
  }, 300_000)

  it("a study's experiments run on the study's engine; validationEvery needs validationPrompts", async () => {
    const exit = await Effect.runPromiseExit(decodeDeclaration(study({
      name: "s",
      experiments: [validExperiment({ engine: "torch", train: { steps: 4, seed: 1, validationEvery: 2 } })]
    })))
    expect(Exit.isFailure(exit)).toBe(true)
    const text = String(Exit.isFailure(exit) ? exit.cause : "")
    expect(text).toContain(
      "experiments.0.engine: a study runs on one engine: this experiment says \"torch\", the study none (tfjs); set `engine` on the study (or run with --engine)"
    )
    expect(text).toContain("experiments.0.train.validationEvery: samples nothing without train.validationPrompts")
  })
})
