import { Command, HelpDoc, ValidationError } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Cause, Effect, Exit, Layer } from "effect"
import { existsSync, readdirSync } from "node:fs"
import { cp, mkdir, readFile, writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { assert, afterAll, beforeAll, describe, expect, it } from "vitest"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { OnnxEngineLive } from "../../adapters/onnx/onnx-engine.ts"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { WeightsLive } from "../../adapters/safetensors/weights-listing.ts"
import { engineLayer } from "../../adapters/tfjs/engine-live.ts"
import { EngineEnvironmentsLive } from "../../adapters/torch/python-environment.ts"
import { exportCommand } from "../../framework/cli/export.ts"
import { generateCommand } from "../../framework/cli/generate.ts"
import { loadDeclaration } from "../../framework/declaration/load.ts"
import { cacheLayout } from "../../framework/runner/cache.ts"
import { plainProgress } from "../../framework/runner/progress.ts"
import { denormalise } from "../../framework/sar/denormalisation.ts"
import type { GeneratedSample } from "../../framework/services/engine.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { planOf } from "../support/plan-of.ts"
import { referencePython } from "../support/reference-python.ts"
import { sardine } from "../support/run-process.ts"
import { FIXTURES, temporaryFolder } from "../training/training-run.ts"
import { isTemporaryName } from "../../framework/files/atomic-write.ts"
import { ModelArchitectureLive } from "../../adapters/tfjs/model-architecture-live.ts"

/**
 * `sardine generate` from each source reproduces the study's generate step: the tiny experiment is run
 * by `sardine run` (prepare, train a UNet LoRA and a token, generate), then `sardine generate` samples
 * the same settings from the experiment file, from its exported LoRA + embedding files on the base (kohya
 * and PEFT), and from its merged diffusers export. Cost: one `sardine run` of a 2-step training, six
 * generations of 4 images at 32² on the wasm backend.
 */

const base = resolve(FIXTURES, "sdxl-tiny")
const experiment = {
  kind: "experiment",
  name: "tiny",
  base: { _tag: "diffusers", path: base, family: "sdxl" },
  components: { unet: { _tag: "lora", rank: 2, lr: 1e-2 }, token: { token: "<SAR>", init: "radar", lr: 5e-2 } },
  data: { _tag: "synthetic", n: 3, size: 32, seed: 1, captionTemplate: "{token} image of {caption}" },
  train: { steps: 2, batchSize: 1, seed: 3 },
  generate: {
    prompts: ["{token} image of a harbour", { text: "{token} image of a field", split: "unseen" }],
    negativePrompt: "blurry",
    seeds: [3],
    samplesPerPrompt: 2,
    sampler: "dpmsolver_multistep",
    steps: 3,
    guidanceScale: 3
  },
  evaluate: { reference: { _tag: "synthetic", n: 2, size: 32, seed: 9 } }
}
/** The same settings as options, for sources that do not carry them. */
const sameSettings = [
  "--negative-prompt",
  "blurry",
  "--seed",
  "3",
  "-n",
  "2",
  "--sampler",
  "dpmsolver_multistep",
  "--steps",
  "3",
  "--guidance",
  "3",
  "--size",
  "32"
]

const layer = Layer.mergeAll(
  NodeContext.layer,
  ImageIOLive,
  plainProgress(() => {}),
  engineLayer({ backend: "wasm" }).pipe(Layer.provide(ImageIOLive)),
  EngineEnvironmentsLive,
  WeightsLive,
  ModelArchitectureLive,
  OnnxEngineLive.pipe(Layer.provide(Layer.merge(ImageIOLive, NodeContext.layer)))
)

const cli = (command: "generate" | "export", args: ReadonlyArray<string>): Promise<Exit.Exit<void, unknown>> => {
  const argv = ["node", "sardine", ...args]
  return command === "generate"
    ? Effect.runPromiseExit(Effect.provide(Command.run(generateCommand, { name: "sardine", version: "test" })(argv), layer))
    : Effect.runPromiseExit(Effect.provide(Command.run(exportCommand, { name: "sardine", version: "test" })(argv), layer))
}

const failure = (exit: Exit.Exit<unknown, unknown>) => (Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "succeeded")

const samplesOf = async (dir: string) => JSON.parse(await readFile(join(dir, "samples.json"), "utf8")) as Array<GeneratedSample & Record<string, unknown>>

const sameFiles = async (a: string, b: string) => {
  const first = await samplesOf(a)
  const second = await samplesOf(b)
  expect(second.map((s) => [s.prompt, s.seed, s.tiff])).toEqual(first.map((s) => [s.prompt, s.seed, s.tiff]))
  for (const sample of first) {
    expect((await readFile(join(a, sample.tiff))).equals(await readFile(join(b, sample.tiff))), sample.tiff).toBe(true)
  }
}

const readRaster = (file: string) => Effect.runPromise(Effect.provide(Effect.flatMap(ImageIO, (io) => io.read(file)), ImageIOLive))

describe("sardine generate", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  let file: string
  let cacheDir: string
  let stepOutput: string

  beforeAll(async () => {
    await Effect.runPromise(selectBackend("wasm"))
    folder = await temporaryFolder("cli-generate")
    file = join(folder.dir, "tiny.json")
    cacheDir = join(folder.dir, "cache")
    await writeFile(file, JSON.stringify(experiment))
    const run = await sardine(["run", file, "--only", "tiny/generate", "--cache-dir", cacheDir, "--tracking-uri", join(folder.dir, "mlruns")], {
      env: { SARDINE_BACKEND: "wasm" }
    })
    expect(run.code, run.stderr).toBe(0)
    const loaded = await Effect.runPromise(loadDeclaration(file).pipe(Effect.provide(NodeContext.layer)))
    const step = (await planOf(file, loaded.declaration)).steps.find((s) => s.kind === "generate")!
    stepOutput = cacheLayout(cacheDir).done(step.key)
  }, 600_000)
  afterAll(() => folder.remove())

  it("from the experiment file: the generate step's files, and samples.json with every setting", async () => {
    const out = join(folder.dir, "from-experiment")
    const exit = await cli("generate", [file, "--cache-dir", cacheDir, "--out", out])
    expect(exit._tag, failure(exit)).toBe("Success")
    await sameFiles(stepOutput, out)
    const [first] = await samplesOf(out)
    assert.isDefined(first)
    expect(first).toMatchObject({ prompt: "<SAR> image of a harbour", negativePrompt: "blurry", seed: 3, replicate: 0 })
    expect(first.settings).toMatchObject({
      source: { kind: "experiment", experiment: "tiny" },
      engine: "tfjs",
      backend: "wasm",
      generate: { sampler: "dpmsolver_multistep", steps: 3, guidanceScale: 3, seeds: [3], samplesPerPrompt: 2, resolution: 32 }
    })
    expect(readdirSync(folder.dir).filter(isTemporaryName)).toEqual([])
  }, 300_000)

  it("from an experiment file declaring the other engine: its training is found whichever engine made it, and sampled on that engine", async () => {
    // The same experiment declared for torch: `sardine run --engine tfjs` would have made the training above.
    const declaredTorch = join(folder.dir, "tiny-declared-torch.json")
    await writeFile(declaredTorch, JSON.stringify({ ...experiment, engine: "torch" }))
    const out = join(folder.dir, "from-other-engine")
    const exit = await cli("generate", [declaredTorch, "--cache-dir", cacheDir, "--out", out])
    expect(exit._tag, failure(exit)).toBe("Success")
    await sameFiles(stepOutput, out)
    const [first] = await samplesOf(out)
    expect(first?.settings).toMatchObject({ source: { kind: "experiment", experiment: "tiny" }, engine: "tfjs" })
    // --engine names the one engine to look under.
    const picked = await cli("generate", [declaredTorch, "--cache-dir", cacheDir, "--engine", "torch", "--out", join(folder.dir, "torch-picked")])
    expect(failure(picked)).toMatch(/tiny\/train has not finished.*sardine run/s)
  }, 300_000)

  it.each(["kohya", "peft"])("from the base with the exported %s LoRA and the embedding file: the same files", async (format) => {
    const lora = join(folder.dir, `${format}.safetensors`)
    const embedding = join(folder.dir, "token.safetensors")
    expect((await cli("export", [file, "--format", format, "--out", lora, "--cache-dir", cacheDir]))._tag).toBe("Success")
    if (!existsSync(embedding)) expect((await cli("export", [file, "--format", "embedding", "--out", embedding, "--cache-dir", cacheDir]))._tag).toBe("Success")
    const out = join(folder.dir, `from-${format}`)
    const exit = await cli("generate", [
      base,
      "--lora",
      lora,
      "--embedding",
      embedding,
      "--prompt",
      "{token} image of a harbour",
      "--prompt",
      "{token} image of a field",
      ...sameSettings,
      "--out",
      out
    ])
    expect(exit._tag, failure(exit)).toBe("Success")
    await sameFiles(stepOutput, out)
    const [first] = await samplesOf(out)
    assert.isDefined(first)
    expect((first.settings as { adapterFiles: ReadonlyArray<{ kind: string; sha256: string }> }).adapterFiles.map((f) => f.kind)).toEqual(["lora", "embedding"])
  }, 300_000)

  it("on the torch engine, the same kohya LoRA and embedding files give the tfjs engine's images (diffusers' LoRA loader, fused)", async () => {
    const lora = join(folder.dir, "kohya.safetensors")
    const embedding = join(folder.dir, "token.safetensors")
    if (!existsSync(lora)) expect((await cli("export", [file, "--format", "kohya", "--out", lora, "--cache-dir", cacheDir]))._tag).toBe("Success")
    if (!existsSync(embedding)) expect((await cli("export", [file, "--format", "embedding", "--out", embedding, "--cache-dir", cacheDir]))._tag).toBe("Success")
    const out = join(folder.dir, "from-kohya-on-torch")
    const prompts = ["--prompt", "{token} image of a harbour", "--prompt", "{token} image of a field"]
    const run = await sardine(["generate", base, "--lora", lora, "--embedding", embedding, ...prompts, ...sameSettings, "--engine", "torch", "--out", out], {
      env: { SARDINE_PYTHON: referencePython(), SARDINE_TORCH_THREADS: "1" }
    })
    expect(run.code, run.stderr).toBe(0)
    const samples = await samplesOf(out)
    expect(samples.map((s) => s.prompt)).toEqual((await samplesOf(stepOutput)).map((s) => s.prompt))
    for (const sample of await samplesOf(stepOutput)) {
      const [a, b] = [await readRaster(join(stepOutput, sample.tiff)), await readRaster(join(out, sample.tiff))]
      const worst = a.data.reduce((m, v, i) => Math.max(m, Math.abs(v - b.data[i]!)), 0)
      // The engines agree to ~1e-5 per pixel from the same noise (test/torch/equivalence.test.ts); without the files, by far less.
      expect(worst, sample.tiff).toBeLessThan(1e-3)
    }
    // The files change the images: without them the torch engine draws others.
    const plain = join(folder.dir, "plain-on-torch")
    const bare = await sardine(["generate", base, "--prompt", "<SAR> image of a harbour", ...sameSettings, "--engine", "torch", "--out", plain], {
      env: { SARDINE_PYTHON: referencePython(), SARDINE_TORCH_THREADS: "1" }
    })
    expect(bare.code, bare.stderr).toBe(0)
    const [[withFiles], [without]] = [await samplesOf(out), await samplesOf(plain)]
    assert.isDefined(withFiles)
    assert.isDefined(without)
    const [x, y] = [await readRaster(join(out, withFiles.tiff)), await readRaster(join(plain, without.tiff))]
    expect(x.data.reduce((m, v, i) => Math.max(m, Math.abs(v - y.data[i]!)), 0)).toBeGreaterThan(1e-2)
  }, 300_000)

  it("from the merged diffusers export: the same images to float rounding (LoRA folded into the weights)", async () => {
    const exported = join(folder.dir, "merged")
    expect((await cli("export", [file, "--format", "diffusers", "--out", exported, "--cache-dir", cacheDir]))._tag).toBe("Success")
    const out = join(folder.dir, "from-merged")
    const exit = await cli("generate", [exported, "--prompt", "<SAR> image of a harbour", "--prompt", "<SAR> image of a field", ...sameSettings, "--out", out])
    expect(exit._tag, failure(exit)).toBe("Success")
    for (const sample of await samplesOf(stepOutput)) {
      const [a, b] = [await readRaster(join(stepOutput, sample.tiff)), await readRaster(join(out, sample.tiff))]
      const worst = a.data.reduce((m, v, i) => Math.max(m, Math.abs(v - b.data[i]!)), 0)
      // W + s·BA folded once vs the adapter added per call: ~1e-7 per weight, a few 1e-6 after sampling and decoding.
      expect(worst, sample.tiff).toBeLessThan(1e-3)
    }
  }, 300_000)

  it("--denormalise writes amplitude and dB TIFFs from the given normalisation", async () => {
    const out = join(folder.dir, "denormalised")
    const exit = await cli("generate", [
      base,
      "--prompt",
      "a harbour",
      "--steps",
      "2",
      "--size",
      "32",
      "--db-window=-25,5",
      "--denormalise",
      "amplitude",
      "--denormalise",
      "db",
      "--out",
      out
    ])
    expect(exit._tag, failure(exit)).toBe("Success")
    const [sample] = await samplesOf(out)
    assert.isDefined(sample)
    const unit = await readRaster(join(out, sample.tiff))
    const window = { _tag: "db-window" as const, min: -25, max: 5 }
    expect(Array.from((await readRaster(join(out, sample.dbTiff as string))).data)).toEqual(Array.from(denormalise(unit.data, window, "db")))
    expect(Array.from((await readRaster(join(out, sample.amplitudeTiff as string))).data)).toEqual(Array.from(denormalise(unit.data, window, "amplitude")))
    expect(sample.settings).toMatchObject({ normalisation: window })
  }, 300_000)

  it("a failure leaves no output behind", async () => {
    const broken = join(folder.dir, "broken.safetensors")
    await writeFile(broken, "not a safetensors file")
    const out = join(folder.dir, "never")
    const exit = await cli("generate", [base, "--prompt", "x", "--lora", broken, "--steps", "1", "--out", out])
    expect(failure(exit)).toMatch(/broken\.safetensors/)
    expect(existsSync(out)).toBe(false)
    expect(readdirSync(folder.dir).filter(isTemporaryName)).toEqual([])
  }, 300_000)

  it("a pipeline folder whose config carries a key the pinned diffusers does not take is refused, naming file, key and engine, before sampling", async () => {
    const folderWithKey = join(folder.dir, "with-unknown-key")
    await cp(base, folderWithKey, { recursive: true })
    const unetConfig = join(folderWithKey, "unet", "config.json")
    await writeFile(unetConfig, JSON.stringify({ ...JSON.parse(await readFile(unetConfig, "utf8")), attention_sink_tokens: 4 }))
    const out = join(folder.dir, "never-sampled")
    const exit = await cli("generate", [folderWithKey, "--prompt", "x", "--steps", "1", "--out", out])
    expect(failure(exit)).toContain(`${unetConfig}: attention_sink_tokens: the tfjs engine refuses a key it would ignore: UNet2DConditionModel`)
    expect(existsSync(out)).toBe(false)
  }, 300_000)

  it("every bad option is a usage error (exit 2) that says what is wrong", async () => {
    const notEmpty = join(folder.dir, "not-empty")
    await mkdir(notEmpty, { recursive: true })
    await writeFile(join(notEmpty, "x"), "")
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
      [[base, "--out", join(folder.dir, "a")], /give the prompts: --prompt TEXT \(repeatable\) or --prompts FILE/],
      [[base, "--prompt", "x", "--seeds", "3-1", "--out", join(folder.dir, "a")], /--seeds: 3-1 runs backwards/],
      [[base, "--prompt", "x", "--seeds", "a", "--out", join(folder.dir, "a")], /--seeds: "a" is not a seed or a range/],
      [[base, "--prompt", "x", "--steps", "0", "--out", join(folder.dir, "a")], /--steps: must be an integer ≥ 1 \(got 0\)/],
      [[base, "--prompt", "x", "-n", "0", "--out", join(folder.dir, "a")], /-n: must be an integer ≥ 1 \(got 0\)/],
      [[base, "--prompt", "x", "--size", "18", "--out", join(folder.dir, "a")], /--size 18: must be a multiple of the VAE's scale factor 4/],
      [[base, "--prompt", "x", "--guidance", "-1", "--out", join(folder.dir, "a")], /--guidance: must be a number ≥ 0/],
      [
        [base, "--prompt", "x", "--sampler", "euler_ancestral", "--scheduler-config", "use_karras_sigmas=true", "--out", join(folder.dir, "a")],
        /--scheduler-config \(use_karras_sigmas\): is read only by euler/
      ],
      [[base, "--prompt", "x", "--scheduler-config", "karras=true", "--out", join(folder.dir, "a")], /--scheduler-config \(karras\): is unexpected/],
      [[base, "--prompt", "x", "--out", notEmpty], /exists and is not empty/],
      [[base, "--prompt", "x", "--denormalise", "db", "--out", join(folder.dir, "a")], /--denormalise: a pipeline folder has no declared normalisation/],
      [
        [file, "--denormalise", "db", "--cache-dir", cacheDir, "--out", join(folder.dir, "a")],
        /--denormalise: mean-std normalisation with per-image statistics/
      ],
      [[base, "--prompt", "x", "--lora", join(folder.dir, "nope.safetensors"), "--out", join(folder.dir, "a")], /--lora .*nope\.safetensors: no such file/],
      [
        [file, "--lora", join(folder.dir, "kohya.safetensors"), "--cache-dir", cacheDir, "--out", join(folder.dir, "a")],
        /--lora and --embedding apply to a pipeline folder/
      ],
      [[base, "--prompt", "x", "--experiment", "tiny", "--out", join(folder.dir, "a")], /--experiment applies to a declaration file/],
      [
        [file, "--experiment", "other", "--cache-dir", cacheDir, "--out", join(folder.dir, "a")],
        /--experiment other: no experiment of that name .*\(it declares tiny\)/
      ],
      [[join(folder.dir, "missing.json"), "--out", join(folder.dir, "a")], /missing\.json: no such file or folder/],
      [[folder.dir, "--prompt", "x", "--out", join(folder.dir, "a")], /a folder without model_index\.json is not a diffusers pipeline/]
    ]
    for (const [args, message] of cases) {
      const exit = await cli("generate", args)
      const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
      const usage = error?._tag === "Some" && ValidationError.isValidationError(error.value) ? HelpDoc.toAnsiText(error.value.error) : failure(exit)
      expect(usage, args.join(" ")).toMatch(message)
      expect(error?._tag === "Some" && ValidationError.isValidationError(error.value), `${args.join(" ")}: a usage error`).toBe(true)
    }
    expect(existsSync(join(folder.dir, "a"))).toBe(false)
    // As a process: printed on stderr, exit code 2.
    const printed = await sardine(["generate", base, "--prompt", "x", "--seeds", "3-1", "--out", join(folder.dir, "a")])
    expect([printed.code, printed.stderr]).toEqual([2, expect.stringContaining("--seeds: 3-1 runs backwards")])
    // Training not in the cache is a failure naming the step and the command (exit 1).
    const notRun = await sardine(["generate", file, "--cache-dir", join(folder.dir, "empty-cache"), "--out", join(folder.dir, "a")])
    expect(notRun.code).toBe(1)
    expect(notRun.stderr).toMatch(/tiny\/train has not finished .*run `sardine run .*tiny\.json` first/)
  }, 300_000)
})
