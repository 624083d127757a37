import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { mkdir, stat, writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { engineLayer } from "../../adapters/tfjs/engine-live.ts"
import { trainModel } from "../../adapters/tfjs/training/trainer.ts"
import { exportCommand, trainStepOf } from "../../framework/cli/export.ts"
import { loadDeclaration } from "../../framework/declaration/load.ts"
import { experimentsOf } from "../../framework/declaration/experiment.ts"
import { cacheLayout, manifestName } from "../../framework/runner/cache.ts"
import { planOf } from "../support/plan-of.ts"
import { prepareSyntheticData } from "../training/prepared-data.ts"
import { FIXTURES, readWeights, temporaryFolder } from "../training/training-run.ts"

/**
 * `sardine export`: finds the experiment's finished train step in the cache through the plan of its
 * declaration and writes the asked format with the real engine (wasm).
 */

const experiment = (base: string) => ({
  kind: "experiment",
  name: "tiny-lora-token",
  base: { _tag: "diffusers", path: base, family: "sdxl" },
  components: {
    unet: { _tag: "lora", rank: 2, lr: 1e-2 },
    token: { token: "<SAR>", init: "radar", lr: 5e-2 }
  },
  data: { _tag: "synthetic", n: 3, size: 32, seed: 1, captionTemplate: "{token} image of {caption}" },
  train: { steps: 2, batchSize: 1, seed: 3 },
  generate: { prompts: ["{token} image of a harbour"], steps: 2 },
  evaluate: { reference: { _tag: "synthetic", n: 2, size: 32, seed: 9 } }
})

const runExport = (args: ReadonlyArray<string>) =>
  Effect.runPromiseExit(
    Command.run(exportCommand, { name: "sardine", version: "test" })(["node", "sardine", ...args]).pipe(
      Effect.provide(Layer.mergeAll(NodeContext.layer, engineLayer({ backend: "wasm" }).pipe(Layer.provide(ImageIOLive))))
    )
  )

describe("sardine export", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  let file: string
  let cacheDir: string
  beforeAll(async () => {
    await Effect.runPromise(selectBackend("wasm"))
    folder = await temporaryFolder("export-command")
    file = join(folder.dir, "experiment.json")
    await writeFile(file, JSON.stringify(experiment(resolve(FIXTURES, "sdxl-tiny"))))
    cacheDir = join(folder.dir, "cache")
    // The train step's output where `sardine run` commits it: <cache>/steps/<key>/ with its manifest.
    const loaded = await Effect.runPromise(loadDeclaration(file))
    const step = trainStepOf((await planOf(file, loaded.declaration)).steps, "tiny-lora-token")!
    const done = cacheLayout(cacheDir).done(step.key)
    await mkdir(done, { recursive: true })
    await Effect.runPromise(prepareSyntheticData(join(folder.dir, "data"), { n: 3, size: 32, seed: 1 }))
    const declared = experimentsOf(loaded.declaration)[0]
    await Effect.runPromise(trainModel({
      base: resolve(FIXTURES, "sdxl-tiny"), components: declared.components, train: declared.train!, dataDir: join(folder.dir, "data"), workDir: done,
      progress: () => Effect.void, metrics: () => Effect.void, log: () => Effect.void
    }))
    await writeFile(join(done, manifestName), JSON.stringify({ id: step.id, kind: "train", key: step.key }))
  })
  afterAll(() => folder.remove())

  it("writes the UNet LoRA as a kohya file and the token as an SDXL embedding file", async () => {
    const kohya = join(folder.dir, "out", "unet-lora.safetensors")
    expect((await runExport([file, "--format", "kohya", "--out", kohya, "--cache-dir", cacheDir]))._tag).toBe("Success")
    const lora = await readWeights(kohya)
    expect([...lora.keys()].every((k) => k.startsWith("lora_unet_"))).toBe(true)
    expect([...lora.keys()].filter((k) => k.endsWith(".alpha"))).toHaveLength([...lora.keys()].length / 3)
    const embedding = join(folder.dir, "out", "sar.safetensors")
    expect((await runExport([file, "--format", "embedding", "--out", embedding, "--cache-dir", cacheDir]))._tag).toBe("Success")
    const token = await readWeights(embedding)
    expect(new Map([...token].map(([k, v]) => [k, v.shape]))).toEqual(new Map([["clip_l", [1, 8]], ["clip_g", [1, 16]]]))
    expect((await stat(kohya)).isFile()).toBe(true)
  })

  it("refuses an experiment whose training is not in the cache, naming the step and the command to run", async () => {
    const exit = await runExport([file, "--format", "kohya", "--out", join(folder.dir, "x.safetensors"), "--cache-dir", join(folder.dir, "empty")])
    expect(exit._tag).toBe("Failure")
    expect(String(exit._tag === "Failure" ? exit.cause : "")).toMatch(/tiny-lora-token\/train has not finished.*sardine run/s)
  })

  it("an unknown --experiment is an error listing the trained ones", async () => {
    const exit = await runExport([file, "--format", "peft", "--out", join(folder.dir, "x.safetensors"), "--cache-dir", cacheDir, "--experiment", "nope"])
    expect(String(exit._tag === "Failure" ? exit.cause : "")).toMatch(/--experiment nope: no trained experiment of that name .*\(trained: tiny-lora-token\)/)
  })
})
