import { Effect, Exit } from "effect"
import { cp, readdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { initModel, InitModelError } from "../../adapters/tfjs/init/init-model.ts"
import { disposePipeline, loadPipeline } from "../../adapters/tfjs/pipeline-loader.ts"
import { readWeights, temporaryFolder } from "../training/training-run.ts"
import { isTemporaryName } from "../../framework/files/atomic-write.ts"

/**
 * init-model against the reference initialisation: tools/make_init_statistics.py builds the same
 * architectures with diffusers / transformers `from_config` over 16 seeds and records, per parameter,
 * the distribution's mean, std, excess kurtosis and largest |value|. One sardine draw must fit it
 * within its sampling error; constants (norm weights and biases, CLIP biases) must be exact.
 */

const FIXTURES = "test/fixtures/demo-base"

interface Reference {
  readonly shape: ReadonlyArray<number>
  readonly mean: number
  readonly std: number
  readonly kurtosis: number
  readonly absMax: number
}
type Statistics = Record<string, Record<string, Record<string, Reference>>>

const WEIGHT_FILES: Record<string, string> = {
  unet: "diffusion_pytorch_model.safetensors",
  vae: "diffusion_pytorch_model.safetensors",
  text_encoder: "model.safetensors",
  text_encoder_2: "model.safetensors"
}

const moments = (values: Float32Array) => {
  const n = values.length
  let sum = 0
  let absMax = 0
  for (const v of values) {
    sum += v
    absMax = Math.max(absMax, Math.abs(v))
  }
  const mean = sum / n
  let m2 = 0
  let m4 = 0
  for (const v of values) {
    const d = (v - mean) ** 2
    m2 += d
    m4 += d * d
  }
  const variance = m2 / n
  return { mean, std: Math.sqrt(variance), kurtosis: variance > 0 ? (m4 / n) / variance ** 2 - 3 : 0, absMax }
}

describe("init-model", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  let statistics: Statistics
  beforeAll(async () => {
    folder = await temporaryFolder("init-model")
    statistics = JSON.parse(await readFile(join(FIXTURES, "init-statistics.json"), "utf8")) as Statistics
    await Effect.runPromise(selectBackend("cpu"))
  })
  afterAll(() => folder.remove())

  const init = (architecture: string, out: string, seed: number, family: "tiny" | "sdxl" = "tiny") =>
    Effect.runPromiseExit(initModel({ architecture, family, seed, out }))

  for (const [architecture, family] of [["init-sd", "tiny"], ["init-sdxl", "sdxl"]] as const) {
    it(`draws every parameter of ${architecture} as diffusers / transformers initialise it`, async () => {
      const out = join(folder.dir, `${architecture}-seed-3`)
      expect(Exit.isSuccess(await init(join(FIXTURES, architecture), out, 3, family))).toBe(true)
      const reference = statistics[architecture]!
      let checked = 0
      for (const [component, parameters] of Object.entries(reference)) {
        const weights = await readWeights(join(out, component, WEIGHT_FILES[component]!))
        expect([...weights.keys()].sort()).toEqual(Object.keys(parameters).sort())
        for (const [name, ref] of Object.entries(parameters)) {
          const { data, shape } = weights.get(name)!
          expect(shape, name).toEqual(ref.shape)
          const n = data.length
          const ours = moments(data)
          if (ref.std === 0) {
            expect(data.every((v) => v === ref.mean), `${component} ${name} is all ${ref.mean}`).toBe(true)
            continue
          }
          // Sampling errors of one draw of n values: mean σ/√n, std σ·√((κ + 2) / 4n) (κ the excess kurtosis).
          expect(Math.abs(ours.mean - ref.mean), `${component} ${name} mean`).toBeLessThan((5 * ref.std) / Math.sqrt(n))
          expect(Math.abs(ours.std / ref.std - 1), `${component} ${name} std`).toBeLessThan(5 * Math.sqrt((ref.kurtosis + 2) / (4 * n)) + 1e-6)
          // A uniform's support: one draw stays inside the largest value 16 draws reached (up to the gap of a few samples).
          if (ref.kurtosis < -1) expect(ours.absMax, `${component} ${name} bound`).toBeLessThan(ref.absMax * 1.05)
          // Uniform (κ = −1.2) against normal (κ = 0): told apart once there are enough values.
          if (n >= 2000) expect(Math.abs(ours.kurtosis - ref.kurtosis), `${component} ${name} kurtosis`).toBeLessThan(0.5)
          checked++
        }
      }
      expect(checked).toBeGreaterThan(50)
      // The pipeline loader accepts it: every name and shape as the configs say.
      const pipeline = await Effect.runPromise(loadPipeline(out))
      expect(pipeline.textEncoders.map((e) => e.name)).toEqual(family === "sdxl" ? ["text_encoder", "text_encoder_2"] : ["text_encoder"])
      disposePipeline(pipeline)
    })
  }

  it("writes the same bytes for the same seed and other weights for another", async () => {
    const files = async (dir: string) => {
      const names = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))
      return new Map(await Promise.all(names.map(async (f) => [f.slice(dir.length), await readFile(f)] as const)))
    }
    const a = join(folder.dir, "same-a")
    const b = join(folder.dir, "same-b")
    const c = join(folder.dir, "other-seed")
    for (const [out, seed] of [[a, 5], [b, 5], [c, 6]] as const) expect(Exit.isSuccess(await init(join(FIXTURES, "init-sd"), out, seed))).toBe(true)
    const [first, second, other] = await Promise.all([files(a), files(b), files(c)])
    expect([...first.keys()].sort()).toEqual([...second.keys()].sort())
    for (const [name, bytes] of first) expect(Buffer.compare(bytes, second.get(name)!), name).toBe(0)
    const unet = "/unet/diffusion_pytorch_model.safetensors"
    expect(Buffer.compare(first.get(unet)!, other.get(unet)!)).not.toBe(0)
    // Configs and tokenizer files are the architecture's, unchanged.
    expect(first.get("/unet/config.json")!.toString()).toBe(await readFile(join(FIXTURES, "init-sd/unet/config.json"), "utf8"))
  })

  const failure = async (exit: Exit.Exit<void, unknown>) => {
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error("expected a typed failure")
    return exit.cause.error as { readonly _tag: string; readonly message: string }
  }

  it("refuses an existing output, weights in the architecture and a vocabulary larger than the embedding table", async () => {
    const existing = join(folder.dir, "existing")
    expect(Exit.isSuccess(await init(join(FIXTURES, "init-sd"), existing, 1))).toBe(true)
    const again = await failure(await init(join(FIXTURES, "init-sd"), existing, 1))
    expect(again).toBeInstanceOf(InitModelError)
    expect(again.message).toContain("already exists")

    const withWeights = join(folder.dir, "arch-with-weights")
    await cp(join(FIXTURES, "init-sd"), withWeights, { recursive: true })
    await writeFile(join(withWeights, "unet", "diffusion_pytorch_model.safetensors"), "")
    const weights = await failure(await init(withWeights, join(folder.dir, "never-1"), 1))
    expect(weights.message).toContain(join("unet", "diffusion_pytorch_model.safetensors"))

    const smallTable = join(folder.dir, "arch-small-table")
    await cp(join(FIXTURES, "init-sd"), smallTable, { recursive: true })
    const config = join(smallTable, "text_encoder", "config.json")
    await writeFile(config, JSON.stringify({ ...JSON.parse(await readFile(config, "utf8")), vocab_size: 100 }))
    const table = await failure(await init(smallTable, join(folder.dir, "never-2"), 1))
    expect(table.message).toContain(config)
    expect(table.message).toContain("vocab_size 100")

    const wrongFamily = await failure(await init(join(FIXTURES, "init-sdxl"), join(folder.dir, "never-3"), 1, "tiny"))
    expect(wrongFamily.message).toContain("text_encoder_2")
    // Nothing half-written is left next to the outputs that failed.
    expect((await readdir(folder.dir)).filter((n) => n.startsWith("never") || isTemporaryName(n))).toEqual([])
  })
})
