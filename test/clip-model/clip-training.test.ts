import * as tf from "@tensorflow/tfjs-core"
import { NodeContext } from "@effect/platform-node"
import { Effect, Schema, Stream } from "effect"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ClipScorersLive } from "../../adapters/clip-scorer/clip-scorers-live.ts"
import { syntheticSamples } from "../../adapters/data/synthetic/synthetic-samples.ts"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { disposeParameters } from "../../adapters/tfjs/checkpoint.ts"
import { clipModelSpecs, decodeClipModelConfig } from "../../adapters/tfjs/clip-model.ts"
import { loadClipModelWeights, readClipModelDescription } from "../../adapters/tfjs/clip-model-folder.ts"
import { clipModelInitialisation, initialClipParameters } from "../../adapters/tfjs/clip-training/clip-initialisation.ts"
import { loadClipPairs, pairsOf } from "../../adapters/tfjs/clip-training/clip-batches.ts"
import { type ClipTrainRun, decays, trainClipModel } from "../../adapters/tfjs/clip-training/clip-trainer.ts"
import { toTorchLayout } from "../../adapters/tfjs/layout.ts"
import { ClipTraining } from "../../framework/declaration/clip-model.ts"
import { synthetic } from "../../framework/declaration/dataset.ts"
import { ClipScorers } from "../../framework/services/scorer.ts"
import { preparedDatasetWriter, readPreparedIndex } from "../../framework/steps/prepared-dataset.ts"
import { appendTrainingLog, readTrainingLog } from "../../framework/steps/training-log.ts"

/** CLIP training from nothing: transformers' initialisation, the real trainer on synthetic SAR pairs, exact resume, the written CLIPModel folder. */

const FIXTURES = "test/fixtures/clip-model"
const reference = JSON.parse(readFileSync(`${FIXTURES}/reference.json`, "utf8")) as {
  init: Record<string, { normal?: number; constant?: number }>
}
const initConfig = JSON.parse(readFileSync(`${FIXTURES}/init-config.json`, "utf8"))

const scratch = mkdtempSync(join(tmpdir(), "sardine-clip-training-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** The fixture model's config and tokenizer without its weights: an architecture folder. */
const architecture = join(scratch, "architecture")
cpSync(`${FIXTURES}/tiny-clip`, architecture, { recursive: true, filter: (source) => !source.endsWith("model.safetensors") })

/** A prepare-data folder from the real synthetic scene generator ("SAR image of …" captions, or "optical image of …"). */
const prepare = (dir: string, options: Parameters<typeof synthetic>[0]) =>
  Effect.runPromise(Effect.gen(function*() {
    const writer = yield* preparedDatasetWriter(dir)
    yield* syntheticSamples(synthetic(options)).pipe(
      Stream.runForEach((item) => (item._tag === "Sample" ? writer.add(item.sample) : writer.skip(item.skipped)))
    )
    return yield* writer.finish
  }))

const training = (input: typeof ClipTraining.Encoded) => Schema.decodeUnknownSync(ClipTraining)(input)

/** A run in `workDir` (created, as the runner creates a step's work folder) logging its metrics there. */
const run = (workDir: string, dataDir: string, train: ClipTraining, onStep: (step: number) => Effect.Effect<void> = () => Effect.void): ClipTrainRun => {
  mkdirSync(workDir, { recursive: true })
  return {
    architecture,
    seed: 3,
    train,
    dataDirs: [dataDir],
    workDir,
    out: join(workDir, "model"),
    progress: () => Effect.void,
    metrics: (step, values) => Effect.zipRight(appendTrainingLog(workDir, step, values).pipe(Effect.provide(NodeContext.layer), Effect.orDie), onStep(step)),
    log: () => Effect.void
  }
}

describe("initial weights", () => {
  it("follow transformers' CLIPModel._init_weights for every parameter", async () => {
    const plan = await Effect.runPromise(decodeClipModelConfig(initConfig, "init-config.json"))
    const rules = clipModelInitialisation(plan)
    expect([...rules.keys()].sort()).toEqual(Object.keys(reference.init).sort())
    for (const [name, expected] of Object.entries(reference.init)) {
      const rule = rules.get(name)!
      if (expected.normal !== undefined) {
        expect(rule.kind, name).toBe("normal")
        expect(rule.kind === "normal" ? rule.std : Number.NaN, name).toBeCloseTo(expected.normal, 12)
      } else {
        expect(rule.kind, name).toBe("constant")
        expect(rule.kind === "constant" ? Math.fround(rule.value) : Number.NaN, name).toBe(expected.constant)
      }
    }
  })

  it("are drawn from the seed alone: equal for one seed on cpu and wasm, different for another", async () => {
    const plan = await Effect.runPromise(decodeClipModelConfig(initConfig, "init-config.json"))
    const values = async (backend: string, seed: number) => {
      await Effect.runPromise(selectBackend(backend))
      const parameters = initialClipParameters(plan, seed)
      const out = new Map(clipModelSpecs(plan).map((spec) => [spec.name, toTorchLayout(spec, parameters.get(spec.name)!.dataSync() as Float32Array)]))
      disposeParameters(parameters)
      return out
    }
    const cpu = await values("cpu", 7)
    const wasm = await values("wasm", 7)
    const other = await values("cpu", 8)
    for (const [name, v] of cpu) expect(Buffer.compare(Buffer.from(v.buffer), Buffer.from(wasm.get(name)!.buffer)), name).toBe(0)
    const table = "text_model.embeddings.token_embedding.weight"
    expect(cpu.get(table)).not.toEqual(other.get(table))
    // 574 × 16 draws of N(0, 0.02): the sample std is within a few percent of 0.02.
    const draws = cpu.get(table)!
    const std = Math.sqrt(draws.reduce((a, v) => a + v * v, 0) / draws.length)
    expect(std).toBeGreaterThan(0.019)
    expect(std).toBeLessThan(0.021)
  })

  it("decay only the weight matrices, as open_clip excludes gains, biases, embeddings and the temperature", async () => {
    const plan = await Effect.runPromise(decodeClipModelConfig(initConfig, "init-config.json"))
    const decaying = clipModelSpecs(plan).filter(decays).map((s) => s.name)
    expect(decaying).toContain("vision_model.embeddings.patch_embedding.weight")
    expect(decaying).toContain("text_model.encoder.layers.0.self_attn.q_proj.weight")
    expect(decaying).toContain("visual_projection.weight")
    for (
      const name of [
        "logit_scale",
        "vision_model.embeddings.class_embedding",
        "text_model.embeddings.token_embedding.weight",
        "vision_model.embeddings.position_embedding.weight",
        "vision_model.pre_layrnorm.weight",
        "text_model.encoder.layers.0.mlp.fc1.bias"
      ]
    ) {
      expect(decaying, name).not.toContain(name)
    }
  })
})

describe("contrastive training", () => {
  let dataDir: string
  beforeAll(async () => {
    dataDir = join(scratch, "data")
    await prepare(dataDir, { n: 12, size: 32, seed: 5 })
  })

  it("trains on every folder of a list as one set of pairs: an epoch-long batch holds each pair of each folder once", async () => {
    const opticalDir = join(scratch, "optical")
    await Effect.runPromise(selectBackend("cpu"))
    const optical = await prepare(opticalDir, { n: 6, size: 32, seed: 6, modality: "optical", colour: "grey" })
    const sar = await Effect.runPromise(readPreparedIndex(dataDir))
    const description = await Effect.runPromise(readClipModelDescription(architecture, { preprocessorRequired: false }))
    const folders = [{ dataDir, prepared: sar }, { dataDir: opticalDir, prepared: optical }]
    const batchSize = sar.samples.length + optical.samples.length
    const pairs = await Effect.runPromise(
      loadClipPairs({ seed: 4, step: 0, batchSize }, { pairs: pairsOf(folders), image: description.image, tokenizer: description.tokenizer }, new Map())
    )
    const sorted = (captions: ReadonlyArray<string>) => [...captions].sort()
    expect(sorted(pairs.captions)).toEqual(sorted([...sar.samples, ...optical.samples].map((s) => s.caption)))
    expect(pairs.captions.some((c) => c.startsWith("optical image of"))).toBe(true)
    expect(pairs.pixels.shape).toEqual([batchSize, 16, 16, 3])
    pairs.pixels.dispose()
  })

  it("resumes on cpu exactly: interrupted after a checkpoint and rerun, the curve and the weights equal an uninterrupted run's", async () => {
    await Effect.runPromise(selectBackend("cpu"))
    const train = training({ steps: 4, batchSize: 6, lr: 2e-3, warmupSteps: 2, checkpointEvery: 2, seed: 1 })
    const whole = join(scratch, "whole")
    await Effect.runPromise(trainClipModel(run(whole, dataDir, train)))
    const resumed = join(scratch, "resumed")
    const interrupted = await Effect.runPromiseExit(trainClipModel(run(resumed, dataDir, train, (step) => (step === 3 ? Effect.interrupt : Effect.void))))
    expect(interrupted._tag).toBe("Failure")
    expect(existsSync(join(resumed, "model")), "no model folder before the end").toBe(false)
    expect(JSON.parse(readFileSync(join(resumed, "checkpoints", "latest.json"), "utf8")).step).toBe(2)
    const seen: Array<number> = []
    await Effect.runPromise(trainClipModel(run(resumed, dataDir, train, (step) => Effect.sync(() => void seen.push(step)))))
    expect(seen).toEqual([3, 4])
    const curve = async (dir: string) => {
      const byStep = new Map((await Effect.runPromise(readTrainingLog(dir).pipe(Effect.provide(NodeContext.layer)))).map((l) => [l.step, l]))
      return [...byStep.values()].map(({ pairs_per_s: _speed, ...rest }) => rest)
    }
    expect(await curve(resumed)).toEqual(await curve(whole))
    expect(Buffer.compare(readFileSync(join(resumed, "model", "model.safetensors")), readFileSync(join(whole, "model", "model.safetensors")))).toBe(0)
    const log = await curve(whole)
    // Linear warm-up over 2 steps, then a half cosine: 0, 1e-3, 2e-3, 1e-3.
    expect(log.map((l) => l.lr)).toEqual([0, 1e-3, 2e-3, 2e-3 * 0.5 * (1 + Math.cos(Math.PI / 2))])
    for (const l of log) {
      expect(Object.keys(l).sort()).toEqual(["accuracy/image_to_text", "accuracy/text_to_image", "grad_norm", "logit_scale", "loss", "lr", "step"])
      expect(l.logit_scale).toBeLessThanOrEqual(100)
    }
    expect(log[0]!.logit_scale).toBeCloseTo(Math.exp(2.6592), 3)
  })

  it("writes a transformers CLIPModel folder that sardine's scorer reads back with the trained weights", async () => {
    const model = join(scratch, "whole", "model")
    expect(readdirSync(model).sort()).toEqual([
      "config.json",
      "merges.txt",
      "model.safetensors",
      "preprocessor_config.json",
      "tokenizer_config.json",
      "vocab.json"
    ])
    // The architecture's config and tokenizer files, byte for byte (transformers refuses 1 where its config types say 1.0).
    for (const name of ["config.json", "vocab.json", "merges.txt", "tokenizer_config.json", "preprocessor_config.json"]) {
      expect(Buffer.compare(readFileSync(join(model, name)), readFileSync(join(architecture, name))), name).toBe(0)
    }
    const description = await Effect.runPromise(readClipModelDescription(model, { preprocessorRequired: true }))
    expect(description.image).toEqual({
      size: 16,
      cropHeight: 16,
      cropWidth: 16,
      mean: [0.48145466, 0.4578275, 0.40821073],
      std: [0.26862954, 0.26130258, 0.27577711]
    })
    const trained = await Effect.runPromise(loadClipModelWeights(model, description.plan))
    const initial = initialClipParameters(description.plan, 3)
    const changed = [...trained.keys()].filter((name) => !tf.tidy(() => tf.all(tf.equal(trained.get(name)!, initial.get(name)!)).dataSync()[0]))
    expect(changed.length).toBe(trained.size)
    disposeParameters(trained)
    disposeParameters(initial)
    const dim = await Effect.runPromise(
      Effect.scoped(Effect.map(Effect.flatMap(ClipScorers, (s) => s.load(model)), (s) => s.dim)).pipe(Effect.provide(ClipScorersLive))
    )
    expect(dim).toBe(12)
  })

  it("learns: on a few pairs the loss falls and in-batch retrieval becomes right, with a flat tensor count (wasm)", async () => {
    await Effect.runPromise(selectBackend("wasm"))
    const small = join(scratch, "small-data")
    await prepare(small, { n: 6, size: 16, seed: 9 })
    const counts: Array<number> = []
    const dir = join(scratch, "overfit")
    await Effect.runPromise(
      trainClipModel(
        run(
          dir,
          small,
          training({ steps: 60, batchSize: 6, lr: 3e-3, weightDecay: 0, checkpointEvery: 100, seed: 2 }),
          () => Effect.sync(() => void counts.push(tf.memory().numTensors))
        )
      )
    )
    const log = await Effect.runPromise(readTrainingLog(dir).pipe(Effect.provide(NodeContext.layer)))
    expect(log.at(-1)!.loss).toBeLessThan(log[0]!.loss! / 4)
    expect(log.at(-1)!["accuracy/image_to_text"]).toBe(1)
    expect(log.at(-1)!["accuracy/text_to_image"]).toBe(1)
    expect(new Set(counts.slice(1)).size, `tensor counts ${counts.slice(0, 5)}…`).toBe(1)
  })

  it("refuses an architecture folder with weights, naming the file", async () => {
    const withWeights = join(scratch, "with-weights")
    cpSync(`${FIXTURES}/tiny-clip`, withWeights, { recursive: true })
    const exit = await Effect.runPromiseExit(trainClipModel({ ...run(join(scratch, "refused"), dataDir, training({ steps: 1 })), architecture: withWeights }))
    expect(exit._tag === "Failure" && exit.cause._tag === "Fail" ? exit.cause.error.message : "succeeded").toBe(
      `${join(withWeights, "model.safetensors")}: an architecture folder holds the config and tokenizer files, not weights: a clipModel trains from nothing`
    )
  })
})
