import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Cause, Effect, Exit, Layer, Schema } from "effect"
import { existsSync, readdirSync } from "node:fs"
import { mkdir, readFile, writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { OnnxEngineLive } from "../../adapters/onnx/onnx-engine.ts"
import { WeightsLive } from "../../adapters/safetensors/weights-listing.ts"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { engineLayer } from "../../adapters/tfjs/engine-live.ts"
import { ModelArchitectureLive } from "../../adapters/tfjs/model-architecture-live.ts"
import { EngineEnvironmentsLive } from "../../adapters/torch/python-environment.ts"
import { exportCommand } from "../../framework/cli/export.ts"
import { generateCommand } from "../../framework/cli/generate.ts"
import { controlNet, diffusers, frozen, full, synthetic } from "../../framework/index.ts"
import { plainProgress } from "../../framework/runner/progress.ts"
import type { GeneratedSample } from "../../framework/services/engine.ts"
import { ImageIO } from "../../framework/services/image-io.ts"
import { OnnxManifest, onnxManifestFile } from "../../framework/services/onnx-pipeline.ts"
import { tinySd1, validExperiment } from "../support/declarations.ts"
import { runPython, torchEngineLayer } from "../torch/torch-worker.ts"
import { FIXTURES, temporaryFolder } from "../training/training-run.ts"

/**
 * `sardine export --format onnx` and `sardine generate --engine onnx`: the tiny SD-1 base of a baseline
 * experiment is exported by the torch engine's exporter; Python's onnxruntime loads every graph and
 * matches diffusers / transformers; onnxruntime-node samples it with the TypeScript scheduler code, and
 * the samples equal the tfjs engine's on the same base and noise within 1e-3. Cost: ~30 s for the export
 * (torch start + three traced graphs), ~15 s for the Python check, a few seconds per 16² generation.
 */

const layer = Layer.mergeAll(
  NodeContext.layer,
  ImageIOLive,
  plainProgress(() => {}),
  EngineEnvironmentsLive,
  WeightsLive,
  ModelArchitectureLive,
  OnnxEngineLive.pipe(Layer.provide(Layer.merge(ImageIOLive, NodeContext.layer)))
)
const tfjsLayer = Layer.merge(layer, engineLayer({ backend: "wasm" }).pipe(Layer.provide(ImageIOLive)))
const torchLayer = Layer.merge(layer, torchEngineLayer)

const cli = (command: "generate" | "export", args: ReadonlyArray<string>): Promise<Exit.Exit<void, unknown>> => {
  const argv = ["node", "sardine", ...args]
  return command === "generate"
    ? Effect.runPromiseExit(Effect.provide(Command.run(generateCommand, { name: "sardine", version: "test" })(argv), tfjsLayer))
    : Effect.runPromiseExit(Effect.provide(Command.run(exportCommand, { name: "sardine", version: "test" })(argv), torchLayer))
}

const failure = (exit: Exit.Exit<unknown, unknown>) => (Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "succeeded")

const samplesOf = async (dir: string) => JSON.parse(await readFile(join(dir, "samples.json"), "utf8")) as Array<GeneratedSample & Record<string, unknown>>

const readRaster = (file: string) => Effect.runPromise(Effect.provide(Effect.flatMap(ImageIO, (io) => io.read(file)), ImageIOLive))

const baseline = validExperiment({ name: "baseline", baseline: true, components: { unet: frozen() }, train: undefined })

describe("sardine export --format onnx / generate --engine onnx", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  let exported: string

  beforeAll(async () => {
    await Effect.runPromise(selectBackend("wasm"))
    folder = await temporaryFolder("onnx-generate")
    const file = join(folder.dir, "baseline.json")
    await writeFile(file, JSON.stringify(baseline))
    exported = join(folder.dir, "onnx")
    const exit = await cli("export", [file, "--format", "onnx", "--out", exported, "--cache-dir", join(folder.dir, "cache")])
    expect(exit._tag, failure(exit)).toBe("Success")
  }, 300_000)
  afterAll(() => folder.remove())

  it("writes the graphs, tokenizer, scheduler config and a manifest naming each graph's inputs and outputs; no temporary folder is left", async () => {
    const manifest = Schema.decodeUnknownSync(OnnxManifest)(JSON.parse(await readFile(join(exported, onnxManifestFile), "utf8")))
    expect(manifest).toMatchObject({ opset: 17, precision: "float32", sampleSize: 8, vaeScaleFactor: 2, latentChannels: 4, tokens: 77 })
    expect(manifest.graphs.unet.inputs).toEqual(["sample", "timestep", "encoder_hidden_states"])
    for (const file of [manifest.graphs.unet.file, manifest.graphs.vae_decoder.file, manifest.graphs.text_encoder.file, manifest.scheduler]) {
      expect(existsSync(join(exported, file)), file).toBe(true)
    }
    expect(existsSync(join(exported, manifest.tokenizer, "vocab.json"))).toBe(true)
    expect(readdirSync(folder.dir).filter((n) => n.endsWith(".partial"))).toEqual([])
  })

  it("loads in Python's onnxruntime: every graph runs at batch 1 and 2 and matches diffusers / transformers", async () => {
    const result = await runPython(resolve("test/onnx/load_onnx_export.py"), [exported, tinySd1])
    expect(result.code, result.stderr).toBe(0)
    const report = JSON.parse(result.stdout.trim().split("\n").pop()!) as Record<string, { inputs: Array<string>; outputs: Array<string>; worst: number }>
    expect(Object.keys(report).sort()).toEqual(["text_encoder", "unet", "vae_decoder"])
    expect(report.vae_decoder).toMatchObject({ inputs: ["latent_sample"], outputs: ["sample"] })
    for (const [graph, { worst }] of Object.entries(report)) expect(worst, graph).toBeLessThan(1e-4)
  }, 120_000)

  it.each([["euler_ancestral", "3"], ["dpmsolver_multistep", "3"], ["ddim", "1"]])(
    "%s (guidance %s) on onnxruntime-node equals the tfjs engine's samples for the same noise (1e-3), negative prompt included",
    async (sampler, guidance) => {
      const settings = ["--prompt", "radar image of a harbour", "--negative-prompt", "blurry", "--seeds", "3-4", "--steps", "3", "--guidance", guidance]
      const onnxOut = join(folder.dir, `onnx-${sampler}`)
      const tfjsOut = join(folder.dir, `tfjs-${sampler}`)
      const onnx = await cli("generate", [exported, "--engine", "onnx", "--sampler", sampler, ...settings, "--size", "16", "--out", onnxOut])
      expect(onnx._tag, failure(onnx)).toBe("Success")
      const tfjs = await cli("generate", [tinySd1, "--engine", "tfjs", "--sampler", sampler, ...settings, "--size", "16", "--out", tfjsOut])
      expect(tfjs._tag, failure(tfjs)).toBe("Success")
      const [onnxSamples, tfjsSamples] = [await samplesOf(onnxOut), await samplesOf(tfjsOut)]
      expect(onnxSamples.map((s) => [s.prompt, s.negativePrompt, s.seed, s.tiff])).toEqual(tfjsSamples.map((s) => [s.prompt, s.negativePrompt, s.seed, s.tiff]))
      expect(onnxSamples[0]!.settings).toMatchObject({ engine: "onnx", source: { kind: "onnx-folder", opset: 17 }, generate: { sampler, resolution: 16 } })
      expect(String((onnxSamples[0]!.settings as { backend: string }).backend)).toMatch(/^onnxruntime-node \d+\.\d+\.\d+ \(cpu\)$/)
      const rasters = await Promise.all(onnxSamples.map((s) => Promise.all([readRaster(join(onnxOut, s.tiff)), readRaster(join(tfjsOut, s.tiff))])))
      for (const [a, b] of rasters) {
        expect(a.width).toBe(16)
        const worst = a.data.reduce((m, v, i) => Math.max(m, Math.abs(v - b.data[i]!)), 0)
        expect(worst).toBeLessThan(1e-3)
      }
      // Different seeds give different images: the comparison is not between two constant outputs.
      const [first, second] = rasters
      expect(first![0].data.some((v, i) => Math.abs(v - second![0].data[i]!) > 1e-3)).toBe(true)
    },
    120_000
  )

  it("names a folder that is not an ONNX export, a broken manifest, and the options that do not apply", async () => {
    const empty = join(folder.dir, "empty")
    await mkdir(empty)
    const out = (name: string) => ["--prompt", "x", "--out", join(folder.dir, name)]
    const refused = async (args: ReadonlyArray<string>, text: RegExp) => {
      const exit = await cli("generate", args)
      expect(exit._tag).toBe("Failure")
      expect(failure(exit)).toMatch(text)
    }
    await refused([tinySd1, "--engine", "onnx", ...out("a")], /--engine onnx: .*sd1-tiny is not an ONNX export \(no sardine-onnx\.json\)/)
    await refused([empty, ...out("b")], /not a diffusers pipeline \(nor, without sardine-onnx\.json, an ONNX export\)/)
    await refused([exported, "--engine", "tfjs", ...out("c")], /is an ONNX export \(sardine-onnx\.json\): sample it with --engine onnx, not tfjs/)
    await refused([exported, "--lora", join(FIXTURES, "sd1-tiny.reference.safetensors"), ...out("d")], /the onnx engine does not apply LoRA/)
    await refused(
      [exported, "--prompt", "{token} image", "--out", join(folder.dir, "g")],
      /"\{token\} image" uses \{token\}: an ONNX export has no learned token/
    )
    const broken = join(folder.dir, "broken")
    await mkdir(broken)
    await writeFile(join(broken, onnxManifestFile), JSON.stringify({ format: "sardine-onnx-pipeline", version: 2 }))
    await refused([broken, ...out("e")], /broken\/sardine-onnx\.json: not a sardine ONNX export manifest/)
    const file = join(folder.dir, "baseline.json")
    await refused([file, "--engine", "onnx", ...out("f")], /--engine onnx samples an ONNX export folder; make one with `sardine export/)
    expect(readdirSync(folder.dir).filter((n) => /^[a-g]$/.test(n) || n.endsWith(".partial"))).toEqual([])
  }, 120_000)

  it("refuses a ControlNet-conditioned experiment at export, naming what the format does not carry", async () => {
    const file = join(folder.dir, "controlled.json")
    const conditioning = controlNet({ input: "label-map", from: "conditioning_file_name", treatment: full({ lr: 1e-4 }) })
    const controlled = validExperiment({ name: "controlled", conditioning, generate: { conditions: synthetic({ n: 2, size: 32, seed: 5 }), seeds: [0] } })
    await writeFile(file, JSON.stringify(controlled))
    const exit = await cli("export", [file, "--format", "onnx", "--out", join(folder.dir, "controlled-onnx")])
    expect(failure(exit)).toMatch(/--format onnx: controlled is conditioned on a ControlNet, which the ONNX export does not carry/)
    expect(existsSync(join(folder.dir, "controlled-onnx"))).toBe(false)
  })
})

/**
 * The SDXL export (two text encoders, the UNet's added conditions) of sdxl-tiny. Cost: ~35 s for the export
 * (torch start + four traced graphs), ~15 s for the Python check, a few seconds per 16² generation.
 */
describe("SDXL: sardine export --format onnx / generate --engine onnx", () => {
  const sdxlTiny = join(resolve(FIXTURES), "sdxl-tiny")
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  let exported: string

  beforeAll(async () => {
    await Effect.runPromise(selectBackend("wasm"))
    folder = await temporaryFolder("onnx-generate-sdxl")
    const file = join(folder.dir, "sdxl.json")
    await writeFile(file, JSON.stringify({ ...baseline, name: "sdxl", base: diffusers(sdxlTiny, { family: "sdxl" }) }))
    exported = join(folder.dir, "onnx")
    const exit = await cli("export", [file, "--format", "onnx", "--out", exported, "--cache-dir", join(folder.dir, "cache")])
    expect(exit._tag, failure(exit)).toBe("Success")
  }, 300_000)
  afterAll(() => folder.remove())

  it("writes both text encoders and tokenizers, the UNet with its added conditions, and records the family and the zeroing rule", async () => {
    const manifest = Schema.decodeUnknownSync(OnnxManifest)(JSON.parse(await readFile(join(exported, onnxManifestFile), "utf8")))
    if (manifest.family !== "sdxl") throw new Error(`family ${manifest.family}`)
    expect(manifest).toMatchObject({ pipeline: "StableDiffusionXLPipeline", forceZerosForEmptyPrompt: true, tokenizer_2: "tokenizer_2", vaeScaleFactor: 4 })
    expect(manifest.graphs.unet.inputs).toEqual(["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"])
    // The penultimate hidden state (diffusers' hidden_states[-2]) of each encoder: sdxl-tiny's have 2 and 3 layers.
    expect(manifest.graphs.text_encoder.outputs[0]).toBe("hidden_states.1")
    expect(manifest.graphs.text_encoder_2.outputs.slice(0, 2)).toEqual(["hidden_states.2", "text_embeds"])
    for (const file of ["text_encoder_2/model.onnx", "text_encoder_2/config.json", "tokenizer_2/vocab.json", "model_index.json"]) {
      expect(existsSync(join(exported, file)), file).toBe(true)
    }
  })

  it("loads in Python's onnxruntime: every graph, and every output sardine reads, matches diffusers / transformers at batch 1 and 2", async () => {
    const result = await runPython(resolve("test/onnx/load_onnx_export.py"), [exported, sdxlTiny])
    expect(result.code, result.stderr).toBe(0)
    const report = JSON.parse(result.stdout.trim().split("\n").pop()!) as Record<string, { inputs: Array<string>; outputs: Array<string>; worst: number }>
    expect(Object.keys(report).sort()).toEqual(["text_encoder", "text_encoder_2", "unet", "vae_decoder"])
    // optimum's names: every layer's hidden state, text_embeds from the encoder with projection.
    expect(report.text_encoder_2!.outputs).toEqual([
      "text_embeds",
      "last_hidden_state",
      "hidden_states.0",
      "hidden_states.1",
      "hidden_states.2",
      "hidden_states.3"
    ])
    for (const [graph, { worst }] of Object.entries(report)) expect(worst, graph).toBeLessThan(1e-4)
  }, 120_000)

  it.each([
    ["a negative prompt", "negative", ["--negative-prompt", "blurry", "--guidance", "3"]],
    ["no negative prompt (force_zeros_for_empty_prompt: zero embeddings)", "zeros", ["--guidance", "3"]],
    ["no guidance", "unguided", ["--guidance", "1"]]
  ])("with %s, onnxruntime-node equals the tfjs engine's samples for the same noise (1e-3)", async (name, tag, options) => {
    const settings = ["--prompt", "radar image of a harbour", "--seeds", "3-4", "--steps", "3", "--sampler", "euler", ...options, "--size", "16"]
    const [onnxOut, tfjsOut] = [join(folder.dir, `onnx-${tag}`), join(folder.dir, `tfjs-${tag}`)]
    const onnx = await cli("generate", [exported, ...settings, "--out", onnxOut])
    expect(onnx._tag, failure(onnx)).toBe("Success")
    const tfjs = await cli("generate", [sdxlTiny, "--engine", "tfjs", ...settings, "--out", tfjsOut])
    expect(tfjs._tag, failure(tfjs)).toBe("Success")
    const [onnxSamples, tfjsSamples] = [await samplesOf(onnxOut), await samplesOf(tfjsOut)]
    expect(onnxSamples.map((s) => [s.prompt, s.negativePrompt, s.seed, s.tiff])).toEqual(tfjsSamples.map((s) => [s.prompt, s.negativePrompt, s.seed, s.tiff]))
    expect(onnxSamples[0]!.settings).toMatchObject({ engine: "onnx", source: { kind: "onnx-folder", pipeline: "StableDiffusionXLPipeline" } })
    const rasters = await Promise.all(onnxSamples.map((s) => Promise.all([readRaster(join(onnxOut, s.tiff)), readRaster(join(tfjsOut, s.tiff))])))
    let worst = 0
    for (const [a, b] of rasters) {
      expect(a.width).toBe(16)
      worst = Math.max(worst, a.data.reduce((m, v, i) => Math.max(m, Math.abs(v - b.data[i]!)), 0))
    }
    console.log(`SDXL ${name}: max |onnx − tfjs| = ${worst.toExponential(2)}`)
    expect(worst).toBeLessThan(1e-3)
    const [first, second] = rasters
    expect(first![0].data.some((v, i) => Math.abs(v - second![0].data[i]!) > 1e-3)).toBe(true)
  }, 120_000)

  it("encodes an explicit empty negative prompt (diffusers zeroes only a missing one): its samples differ from the zeroed ones", async () => {
    const out = join(folder.dir, "onnx-empty")
    const settings = ["--prompt", "radar image of a harbour", "--seeds", "3-4", "--steps", "3", "--sampler", "euler", "--guidance", "3", "--size", "16"]
    const exit = await cli("generate", [exported, ...settings, "--negative-prompt", "", "--out", out])
    expect(exit._tag, failure(exit)).toBe("Success")
    const [sample] = await samplesOf(out)
    expect(sample!.negativePrompt).toBe("")
    const [empty, zeroed] = await Promise.all([readRaster(join(out, sample!.tiff)), readRaster(join(folder.dir, "onnx-zeros", sample!.tiff))])
    expect(empty.data.some((v, i) => Math.abs(v - zeroed.data[i]!) > 1e-3)).toBe(true)
  }, 120_000)
})
