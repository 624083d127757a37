import { Effect } from "effect"
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { assert, afterAll, beforeAll, describe, expect, it } from "vitest"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { disposePipeline, loadPipeline } from "../../adapters/tfjs/pipeline-loader.ts"
import { Engine } from "../../framework/services/engine.ts"
import { repoRoot } from "../support/run-process.ts"
import { readWeights, temporaryFolder } from "../training/training-run.ts"
import { runTorch } from "./torch-worker.ts"

/**
 * init-model on the torch engine: the demo's architecture folder becomes a pipeline with weights as diffusers'
 * and transformers' from_config make them after torch.manual_seed(seed) — the same seed the same bytes,
 * another seed other weights — whose configs and tokenizer are the architecture's, byte for byte, and which
 * the tfjs engine loads. Cost: ≈ 20 s (three worker starts).
 */

const architecture = join(repoRoot, "experiments/demo/architecture")

describe("init-model on the torch engine", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  const init = (out: string, seed: number) => runTorch(Effect.flatMap(Engine, (engine) => engine.initModel({ architecture, family: "tiny", seed, out })))
  beforeAll(async () => {
    folder = await temporaryFolder("torch-init")
  })
  afterAll(() => folder.remove())

  it("builds a seeded pipeline the tfjs engine loads; the same seed gives the same bytes", async () => {
    const [a, b, c] = [join(folder.dir, "a"), join(folder.dir, "b"), join(folder.dir, "c")]
    await init(a, 3)
    await init(b, 3)
    await init(c, 4)
    for (
      const file of [
        "model_index.json",
        "unet/config.json",
        "vae/config.json",
        "text_encoder/config.json",
        "tokenizer/vocab.json",
        "scheduler/scheduler_config.json"
      ]
    ) {
      expect(await readFile(join(a, file), "utf8"), file).toBe(await readFile(join(architecture, file), "utf8"))
    }
    for (const weights of ["unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"]) {
      const [first, again, other] = await Promise.all([a, b, c].map((dir) => readWeights(join(dir, weights))))
      assert.isDefined(first)
      assert.isDefined(again)
      assert.isDefined(other)
      expect([...again.keys()]).toEqual([...first.keys()])
      for (const [name, t] of first) expect(Buffer.from(again.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer)), name).toBe(true)
      // Drawn tensors are those not filled with one constant (biases and norms start at 0 and 1 whatever the seed).
      const drawn = [...first].filter(([, t]) => t.data.some((v) => v !== t.data[0]))
      const unmoved = drawn.filter(([name, t]) => Buffer.from(other.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer))).map(([name]) => name)
      expect(drawn.length, weights).toBeGreaterThan(0)
      expect(unmoved, `${weights}: another seed draws other values`).toEqual([])
    }
    await Effect.runPromise(selectBackend("cpu"))
    const pipeline = await Effect.runPromise(loadPipeline(a))
    expect(pipeline.textEncoders.map((e) => e.name)).toEqual(["text_encoder"])
    expect(pipeline.unet.parameters.size).toBeGreaterThan(0)
    disposePipeline(pipeline)
  }, 300_000)
})
