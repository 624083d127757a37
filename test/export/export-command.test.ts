import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { cp, mkdir, stat, writeFile } from "node:fs/promises"
import { join, resolve } from "node:path"
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { engineLayer } from "../../adapters/tfjs/engine-live.ts"
import { trainModel } from "../../adapters/tfjs/training/trainer.ts"
import { exportCommand } from "../../framework/cli/export.ts"
import { trainStepOf } from "../../framework/cli/trained-plan.ts"
import { loadDeclaration } from "../../framework/declaration/load.ts"
import { experimentsOf } from "../../framework/declaration/experiment.ts"
import { cacheLayout, manifestName } from "../../framework/runner/cache.ts"
import { planOf } from "../support/plan-of.ts"
import { prepareSyntheticData } from "../training/prepared-data.ts"
import { resolveAdaptation } from "../../framework/declaration/adaptation.ts"
import { FIXTURES, readWeights, temporaryFolder } from "../training/training-run.ts"
import { EngineEnvironmentsLive } from "../../adapters/torch/python-environment.ts"
import { WeightsLive } from "../../adapters/safetensors/weights-listing.ts"
import { ModelArchitectureLive } from "../../adapters/tfjs/model-architecture-live.ts"

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

/** A hybrid (full UNet, 2-vector token) with an EMA; the second declaration samples (and exports) its final weights. */
const hybrid = (base: string, name: string, useEma: boolean) => ({
  ...experiment(base),
  name,
  components: { unet: { _tag: "full", lr: 1e-2 }, token: { token: "<SAR>", init: "radar", vectors: 2, lr: 5e-2 } },
  train: { steps: 2, batchSize: 1, seed: 3, captionDropout: 0, ema: { decay: 0.5 } },
  generate: { prompts: ["{token} image of a harbour"], steps: 2, useEma }
})

/** What an export printed, and how it ended. */
const printed = async (args: ReadonlyArray<string>) => {
  const log = vi.spyOn(console, "log").mockImplementation(() => undefined)
  try {
    const exit = await runExport(args)
    // The engine's own log lines (its backend) are not the command's output.
    return { exit, lines: log.mock.calls.map((call) => call.join(" ")).filter((line) => !line.startsWith("timestamp=")) }
  } finally {
    log.mockRestore()
  }
}

/** Trains the declaration's experiment into the cache where `sardine run` would commit its train step. */
const trainInto = async (file: string, cacheDir: string, dataDir: string) => {
  const loaded = await Effect.runPromise(loadDeclaration(file).pipe(Effect.provide(NodeContext.layer)))
  const declared = experimentsOf(loaded.declaration)[0]!
  const step = trainStepOf((await planOf(file, loaded.declaration)).steps, declared.name)!
  const done = cacheLayout(cacheDir).done(step.key)
  await mkdir(done, { recursive: true })
  await Effect.runPromise(trainModel({
    base: resolve(FIXTURES, "sdxl-tiny"),
    adaptation: resolveAdaptation(declared.components, declared.base.family),
    train: declared.train!,
    dataDir,
    workDir: done,
    progress: () => Effect.void,
    metrics: () => Effect.void,
    log: () => Effect.void
  }))
  await writeFile(join(done, manifestName), JSON.stringify({ id: step.id, kind: "train", key: step.key }))
  return done
}

const runExport = (args: ReadonlyArray<string>) =>
  Effect.runPromiseExit(
    Command.run(exportCommand, { name: "sardine", version: "test" })(["node", "sardine", ...args]).pipe(
      Effect.provide(
        Layer.mergeAll(
          NodeContext.layer,
          engineLayer({ backend: "wasm" }).pipe(Layer.provide(ImageIOLive)),
          EngineEnvironmentsLive,
          WeightsLive,
          ModelArchitectureLive
        )
      )
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
    await Effect.runPromise(prepareSyntheticData(join(folder.dir, "data"), { n: 3, size: 32, seed: 1 }))
    await trainInto(file, cacheDir, join(folder.dir, "data"))
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

  describe("a hybrid with an EMA and a 2-vector token", () => {
    let ema: string
    let final: string
    let modelDir: string
    beforeAll(async () => {
      ema = join(folder.dir, "hybrid-ema.json")
      final = join(folder.dir, "hybrid-final.json")
      await writeFile(ema, JSON.stringify(hybrid(resolve(FIXTURES, "sdxl-tiny"), "hybrid-ema", true)))
      await writeFile(final, JSON.stringify(hybrid(resolve(FIXTURES, "sdxl-tiny"), "hybrid-final", false)))
      // generate.useEma is not read by training: both declarations share this train step.
      modelDir = await trainInto(ema, cacheDir, join(folder.dir, "data"))
    })

    it("--format kohya is refused, naming the fully trained UNet and pointing at --format diffusers; nothing is written", async () => {
      const out = join(folder.dir, "out", "hybrid-kohya.safetensors")
      const { exit } = await printed([ema, "--format", "kohya", "--out", out, "--cache-dir", cacheDir])
      expect(String(exit._tag === "Failure" ? exit.cause : "")).toContain(
        "--format kohya: a LoRA file carries adapters only, not the fully trained unet; export the whole trained model with --format diffusers"
      )
      await expect(stat(out)).rejects.toThrow(/ENOENT/)
    })

    it("exports the EMA when generate.useEma asks (the default), the final weights when it is false, and says which; it shows how to prompt the 2 vectors", async () => {
      const rows = "text_encoder.text_model.embeddings.added_token_embedding.weight"
      const stored = {
        ema: (await readWeights(join(modelDir, "ema.safetensors"))).get(rows)!.data,
        final: (await readWeights(join(modelDir, "model.safetensors"))).get(rows)!.data
      }
      expect(stored.ema).not.toEqual(stored.final)
      for (
        const [file, weights, line] of [
          [ema, "ema", "hybrid-ema: wrote embedding to OUT (EMA weights after step 2, as generate.useEma asks)"],
          [final, "final", "hybrid-final: wrote embedding to OUT (final weights of step 2, as generate.useEma: false asks)"]
        ] as const
      ) {
        const out = join(folder.dir, "out", `${weights}.safetensors`)
        const { exit, lines } = await printed([file, "--format", "embedding", "--out", out, "--cache-dir", cacheDir])
        expect(exit._tag).toBe("Success")
        expect(Array.from((await readWeights(out)).get("clip_l")!.data)).toEqual(Array.from(stored[weights]))
        expect(lines[0]).toBe(line.replace("OUT", out))
        expect(lines[1]).toContain("write all of them in prompts: \"<SAR> <SAR>_1 image of …\"")
      }
    })
  })

  it("refuses an experiment whose training is not in the cache, naming the step and the command to run", async () => {
    const exit = await runExport([file, "--format", "kohya", "--out", join(folder.dir, "x.safetensors"), "--cache-dir", join(folder.dir, "empty")])
    expect(exit._tag).toBe("Failure")
    expect(String(exit._tag === "Failure" ? exit.cause : "")).toMatch(/tiny-lora-token\/train has not finished.*sardine run/s)
  })

  it("finds a training whichever engine made it (the engine is in its key); refuses when both did, naming both and --engine", async () => {
    // The training made above, committed where each engine's train step would commit it: the lookup reads keys.
    const loaded = await Effect.runPromise(loadDeclaration(file).pipe(Effect.provide(NodeContext.layer)))
    const trainedBy = async (engine: "tfjs" | "torch") => trainStepOf((await planOf(file, loaded.declaration, engine)).steps, "tiny-lora-token")!
    const [tfjs, torch] = [await trainedBy("tfjs"), await trainedBy("torch")]
    expect(torch.key).not.toBe(tfjs.key)
    const engines = join(folder.dir, "cache-engines")
    const commit = async (step: typeof torch) => {
      await cp(cacheLayout(cacheDir).done(tfjs.key), cacheLayout(engines).done(step.key), { recursive: true })
      await writeFile(join(cacheLayout(engines).done(step.key), manifestName), JSON.stringify({ id: step.id, kind: "train", key: step.key }))
    }
    const exported = async (name: string, flags: ReadonlyArray<string> = []) => {
      const out = join(folder.dir, "out", `${name}.safetensors`)
      const { exit, lines } = await printed([file, "--format", "kohya", "--out", out, "--cache-dir", engines, ...flags])
      return { out, failure: exit._tag === "Failure" ? String(exit.cause) : undefined, lines }
    }

    await commit(torch)
    const found = await exported("torch-only")
    expect(found.failure).toBeUndefined()
    expect(found.lines[0]).toMatch(new RegExp(`^tiny-lora-token: wrote kohya to ${found.out} `))
    expect([...(await readWeights(found.out)).keys()].every((k) => k.startsWith("lora_unet_"))).toBe(true)
    // --engine names the one engine to look under.
    expect((await exported("tfjs-only", ["--engine", "tfjs"])).failure).toMatch(/tiny-lora-token\/train has not finished.*sardine run/s)

    await commit(tfjs)
    const both = await exported("both")
    expect(both.failure).toContain(
      `tiny-lora-token was trained by both engines (tfjs: ${cacheLayout(engines).done(tfjs.key)}, torch: ${cacheLayout(engines).done(torch.key)}); ` +
        "pick one with --engine tfjs or --engine torch"
    )
    await expect(stat(both.out)).rejects.toThrow(/ENOENT/)
    expect((await exported("picked", ["--engine", "torch"])).failure).toBeUndefined()
  })

  it("an unknown --experiment is an error listing the trained ones", async () => {
    const exit = await runExport([file, "--format", "peft", "--out", join(folder.dir, "x.safetensors"), "--cache-dir", cacheDir, "--experiment", "nope"])
    expect(String(exit._tag === "Failure" ? exit.cause : "")).toMatch(/--experiment nope: no trained experiment of that name .*\(trained: tiny-lora-token\)/)
  })
})
