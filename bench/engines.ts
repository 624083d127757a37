/**
 * The two engines on the demo (issue 16), same CPU, same run: the demo's training steps (its full-UNet and
 * LoRA-UNet strategies: batch 16, 32 × 32 images, fp32) and its generation (20 guided Euler steps) on the tfjs
 * engine (wasm) and on the torch engine, with the speed-up; and the torch engine against its bare peer
 * (bench/torch_engine_peer.py: a plain diffusers + PEFT loop on the same model, batch, precision, LoRA targets,
 * text conditioning shape, clipping and weight decay), whose ratio is the engine's overhead (goal ≤ 1.05).
 *
 *   npm run bench:engines [-- --steps N] [--rounds R] [--tfjs-steps M]
 *
 * Both engines train from the same prepared data and caches; per-step times are each trainer's own
 * (training.json), after two warm-up steps, medians. The overhead is a ratio of two runs, so a change of load
 * between them moves it (single runs of 20 steps ranged 0.80–1.55 on a shared machine): the torch engine and
 * its peer run R rounds (default 3) of N steps (default 100) in turn, and the ratio is that of the medians of
 * every round's steps, each round's own ratio printed beside it. The tfjs engine, many times slower, trains M
 * steps (default 20) per strategy once: the speed-up needs no finer figure. Generation is timed around the
 * engine call (the torch worker's start included, and shown on its own). The torch engine and its peer use
 * SARDINE_TORCH_THREADS (default: every core). The machine may be shared: the load average is printed before
 * and after.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { cpus, loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { ImageIOLive } from "../adapters/images/image-io-live.ts"
import { engineLayer } from "../adapters/tfjs/engine-live.ts"
import type { StepRecord } from "../adapters/tfjs/training/training-checkpoint.ts"
import { configuredPython, probeEnvironment } from "../adapters/torch/python-environment.ts"
import { makeTorchEngine } from "../adapters/torch/torch-engine.ts"
import { BaseModel, diffusers } from "../framework/declaration/base-model.ts"
import { resolveAdaptation } from "../framework/declaration/adaptation.ts"
import { Components } from "../framework/declaration/components.ts"
import { Generation } from "../framework/declaration/generation.ts"
import { Training } from "../framework/declaration/training.ts"
import { Engine } from "../framework/services/engine.ts"
import { prepareSyntheticData } from "../test/training/prepared-data.ts"
import { median } from "./median.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const option = (name: string, fallback: number) => {
  const at = process.argv.indexOf(name)
  if (at < 0) return fallback
  const value = Number(process.argv[at + 1])
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} takes a positive whole number, not ${process.argv[at + 1]}`)
  return value
}
const STEPS = option("--steps", 100)
const ROUNDS = option("--rounds", 3)
const TFJS_STEPS = option("--tfjs-steps", 20)
const WARM_UP = 2
const BATCH = 16
process.env.SARDINE_TORCH_THREADS ??= String(cpus().length)

const base = join(root, "experiments/demo/base")
const resolvedBase = { base: Schema.decodeUnknownSync(BaseModel)(diffusers(base, { family: "tiny" })), path: base }
const STRATEGIES = {
  full: { unet: { _tag: "full", lr: 5e-4 } },
  lora: { unet: { _tag: "lora", rank: 8, alpha: 8, lr: 2e-3 } }
} as const
const loads = () => loadavg().map((l) => l.toFixed(1)).join(" ")
const seconds = async <A>(run: () => Promise<A>) => {
  const start = performance.now()
  await run()
  return (performance.now() - start) / 1000
}

const location = configuredPython()
if (location === undefined) throw new Error("no Python for the torch engine: run `npx sardine engine setup torch` or set SARDINE_PYTHON")
const tfjsLayer = engineLayer({ backend: "wasm" }).pipe(Layer.provide(ImageIOLive))
const torchLayer = Layer.effect(Engine, makeTorchEngine({ python: location })).pipe(Layer.provide(Layer.merge(ImageIOLive, NodeContext.layer)))
const on = (layer: typeof tfjsLayer) => <A, E>(effect: Effect.Effect<A, E, Engine>) => Effect.runPromise(Effect.provide(effect, layer))
const engines = { tfjs: on(tfjsLayer), torch: on(torchLayer) }

const folder = mkdtempSync(join(tmpdir(), "sardine-bench-engines-"))
try {
  const loadBefore = loads()
  const dataDir = join(folder, "data")
  const latentsDir = join(folder, "latents")
  const textDir = join(folder, "text")
  await Effect.runPromise(prepareSyntheticData(dataDir, { n: 128, size: 32, seed: 11 }))
  await engines.tfjs(Effect.flatMap(Engine, (e) =>
    Effect.zipRight(
      e.encodeLatents({ base: resolvedBase, dataDir, outDir: latentsDir, progress: () => Effect.void }),
      e.encodeText({ base: resolvedBase, dataDir, outDir: textDir, progress: () => Effect.void })
    )))
  const training = (steps: number) =>
    Schema.decodeUnknownSync(Training)({ steps: WARM_UP + steps, batchSize: BATCH, seed: 1, maxGradNorm: 1, checkpointEvery: 1_000_000 })
  let runs = 0
  const msPerStep = async (engine: keyof typeof engines, strategy: keyof typeof STRATEGIES, steps: number) => {
    const workDir = join(folder, `${engine}-${strategy}-${runs++}`)
    await engines[engine](Effect.flatMap(Engine, (e) =>
      e.train({
        base: resolvedBase,
        adaptation: resolveAdaptation(Schema.decodeUnknownSync(Components)(STRATEGIES[strategy]), resolvedBase.base.family),
        train: training(steps),
        dataDir,
        latentsDir,
        textDir,
        workDir,
        progress: () => Effect.void,
        metrics: () => Effect.void,
        log: () => Effect.void
      })))
    const history = (JSON.parse(readFileSync(join(workDir, "training.json"), "utf8")) as { steps: Array<StepRecord> }).steps
    return history.slice(WARM_UP).map((r) => (1000 * BATCH) / r.imagesPerSecond)
  }
  const peer = (strategy: keyof typeof STRATEGIES) =>
    (JSON.parse(execFileSync(location.python, [join(root, "bench/torch_engine_peer.py"), base, strategy, String(STEPS), String(BATCH), "8", "fp32"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, HF_HUB_OFFLINE: "1" }
    })) as { msPerStep: Array<number> }).msPerStep

  const rows: Array<string> = []
  for (const strategy of ["full", "lora"] as const) {
    const tfjs = median(await msPerStep("tfjs", strategy, TFJS_STEPS))
    const rounds: Array<{ torch: Array<number>; peer: Array<number> }> = []
    for (let round = 0; round < ROUNDS; round++) rounds.push({ torch: await msPerStep("torch", strategy, STEPS), peer: peer(strategy) })
    const perRound = rounds.map((r) => (median(r.torch) / median(r.peer)).toFixed(2))
    const [torch, bare] = [median(rounds.flatMap((r) => r.torch)), median(rounds.flatMap((r) => r.peer))]
    rows.push(
      `  ${`${strategy} UNet`.padEnd(10)}  tfjs ${tfjs.toFixed(0).padStart(5)} ms  torch ${torch.toFixed(0).padStart(5)} ms  peer ${
        bare.toFixed(0).padStart(5)
      } ms` +
        `  speed-up ${(tfjs / torch).toFixed(2)}  overhead ${(torch / bare).toFixed(2)} (rounds: ${perRound.join(", ")})`
    )
  }
  const generation = Schema.decodeUnknownSync(Generation)({
    prompts: ["SAR image of farmland with crop fields", "SAR image of a harbour with a ship"],
    seeds: [0, 1, 2, 3],
    steps: 20,
    guidanceScale: 4
  })
  const generate = (engine: keyof typeof engines) =>
    seconds(() =>
      engines[engine](
        Effect.flatMap(Engine, (e) =>
          e.generate({
            base: resolvedBase,
            adaptation: resolveAdaptation(Schema.decodeUnknownSync(Components)({ unet: { _tag: "frozen" } }), resolvedBase.base.family),
            generate: generation,
            resolution: 32,
            outDir: join(folder, `samples-${engine}`),
            progress: () => Effect.void
          }))
      )
    )
  const [tfjsGenerate, torchGenerate] = [await generate("tfjs"), await generate("torch")]
  const start = await seconds(() => Effect.runPromise(probeEnvironment(location)))
  const loadAfter = loads()

  console.log(
    `the demo on both engines: batch ${BATCH}, 32 × 32 images (8 × 8 latents), fp32; torch engine and peer ${ROUNDS} rounds of ${STEPS} steps, ` +
      `tfjs ${TFJS_STEPS} steps, each after ${WARM_UP} warm-up (medians); ` +
      `torch on ${process.env.SARDINE_TORCH_THREADS} threads; load average ${loadBefore} before, ${loadAfter} after`
  )
  console.log("training (ms per step):")
  for (const row of rows) console.log(row)
  console.log(
    `generation, 8 images of 20 guided Euler steps: tfjs ${tfjsGenerate.toFixed(1)} s, torch ${torchGenerate.toFixed(1)} s (its worker's start alone: ${
      start.toFixed(1)
    } s); ` +
      `speed-up ${(tfjsGenerate / torchGenerate).toFixed(2)}`
  )
} finally {
  rmSync(folder, { recursive: true, force: true })
}
