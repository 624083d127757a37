import { Effect, Layer, Schema } from "effect"
import { readFile, stat } from "node:fs/promises"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { engineLayer } from "../../adapters/tfjs/engine-live.ts"
import { LATENT_INDEX } from "../../adapters/tfjs/encoding/latent-cache.ts"
import { TEXT_INDEX } from "../../adapters/tfjs/encoding/text-cache.ts"
import type { StepRecord } from "../../adapters/tfjs/training/training-checkpoint.ts"
import { diffusers } from "../../framework/declaration/base-model.ts"
import { BaseModel } from "../../framework/declaration/base-model.ts"
import { Generation } from "../../framework/declaration/generation.ts"
import { Engine, samplesIndexFile, type GeneratedSample, type TrainRequest } from "../../framework/services/engine.ts"
import { prepareSyntheticData } from "./prepared-data.ts"
import { adaptation, FIXTURES, readWeights, temporaryFolder, training } from "./training-run.ts"

/**
 * The Engine service as the step handlers call it: encode-latents and encode-text caches, training from
 * them, generation with the trained model (through part 6b's sampler) and export, on the wasm backend.
 */

const base = { base: Schema.decodeUnknownSync(BaseModel)(diffusers("sdxl-tiny", { family: "sdxl" })), path: resolve(FIXTURES, "sdxl-tiny") }
const quiet = { progress: () => Effect.void, log: () => Effect.void }

const history = async (dir: string) => (JSON.parse(await readFile(join(dir, "training.json"), "utf8")) as { steps: Array<StepRecord> }).steps

describe("the tfjs Engine service", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  const layer = engineLayer({ backend: "wasm" }).pipe(Layer.provide(ImageIOLive))
  const run = <A, E>(effect: Effect.Effect<A, E, Engine>) => Effect.runPromise(Effect.provide(effect, layer))
  beforeAll(async () => {
    folder = await temporaryFolder("engine")
    await Effect.runPromise(prepareSyntheticData(join(folder.dir, "data"), { n: 3, size: 32, seed: 12 }))
  })
  afterAll(() => folder.remove())

  const train = (workDir: string, caches: Partial<Pick<TrainRequest, "latentsDir" | "textDir">>) =>
    Effect.flatMap(Engine, (engine) =>
      engine.train({
        base,
        adaptation: adaptation({ unet: { _tag: "full", lr: 1e-3 } }),
        train: training({ steps: 3, batchSize: 2, seed: 4, captionDropout: 0.3, checkpointEvery: 2 }),
        dataDir: join(folder.dir, "data"),
        workDir,
        metrics: () => Effect.void,
        ...quiet,
        ...caches
      }))

  it("trains from the encode-latents and encode-text caches as from the encoders themselves", async () => {
    const latentsDir = join(folder.dir, "latents")
    const textDir = join(folder.dir, "text")
    const backend = await run(Effect.gen(function*() {
      const engine = yield* Engine
      yield* engine.encodeLatents({ base, dataDir: join(folder.dir, "data"), outDir: latentsDir, ...quiet })
      yield* engine.encodeText({ base, dataDir: join(folder.dir, "data"), outDir: textDir, ...quiet })
      return yield* engine.backend
    }))
    expect(backend).toBe("wasm")
    const latentIndex = JSON.parse(await readFile(join(latentsDir, LATENT_INDEX), "utf8"))
    expect(latentIndex.samples).toHaveLength(3)
    expect(latentIndex.shape).toEqual([8, 8, 4])
    const textIndex = JSON.parse(await readFile(join(textDir, TEXT_INDEX), "utf8"))
    expect(textIndex.conditioning).toBe("sdxl")
    expect(textIndex.captions[0].caption).toBe("")
    await run(train(join(folder.dir, "cached"), { latentsDir, textDir }))
    await run(train(join(folder.dir, "live"), {}))
    const cached = await history(join(folder.dir, "cached"))
    const live = await history(join(folder.dir, "live"))
    cached.forEach((record, i) => expect(Math.abs(record.loss - live[i]!.loss), `loss at step ${record.step}`).toBeLessThan(1e-5 * live[i]!.loss))
    const a = await readWeights(join(folder.dir, "cached", "model.safetensors"))
    const b = await readWeights(join(folder.dir, "live", "model.safetensors"))
    let worst = 0
    for (const [name, t] of a) t.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b.get(name)!.data[i]!))))
    expect(worst).toBeLessThan(1e-5)
  })

  it("generates with the trained model and exports it; a format the model has nothing for is an EngineError", async () => {
    const modelDir = join(folder.dir, "cached")
    const outDir = join(folder.dir, "samples")
    await run(Effect.flatMap(Engine, (engine) =>
      engine.generate({
        base,
        adaptation: adaptation({ unet: { _tag: "full", lr: 1e-3 } }),
        generate: Schema.decodeUnknownSync(Generation)({ prompts: ["SAR image of a harbour"], seeds: [1, 2], steps: 2, guidanceScale: 3 }),
        modelDir,
        resolution: 32,
        outDir,
        progress: () => Effect.void
      })))
    const samples = JSON.parse(await readFile(join(outDir, samplesIndexFile), "utf8")) as Array<GeneratedSample>
    expect(samples.map((s) => s.seed)).toEqual([1, 2])
    for (const s of samples) expect((await stat(join(outDir, s.tiff))).size).toBeGreaterThan(32 * 32 * 4)
    const merged = join(folder.dir, "merged")
    await run(Effect.flatMap(Engine, (engine) => engine.export({ base, modelDir, format: "diffusers", out: merged, useEma: true })))
    expect((await stat(join(merged, "unet", "diffusion_pytorch_model.safetensors"))).isFile()).toBe(true)
    expect((await stat(join(merged, "text_encoder_2", "model.safetensors"))).isFile()).toBe(true)
    const kohya = await Effect.runPromiseExit(
      Effect.provide(
        Effect.flatMap(Engine, (engine) => engine.export({ base, modelDir, format: "kohya", out: join(folder.dir, "x.safetensors"), useEma: true })),
        layer
      )
    )
    expect(kohya._tag).toBe("Failure")
    expect(String(kohya._tag === "Failure" ? kohya.cause : "")).toMatch(
      /EngineError.*a LoRA file carries adapters only, not the fully trained unet.*--format diffusers/s
    )
  })
})
