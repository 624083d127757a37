/**
 * Milliseconds per training step of the tiny SDXL-like fixture (batch 2, 32 × 32 images, 8 × 8 latents) with
 * sardine's real trainer, on the cpu and wasm backends, against PyTorch doing the same full-UNet step
 * (bench/training_step_peer.py, torch on 1 and 2 threads) in the same run:
 *   full UNet     UNet fully trained from the encode-latents / encode-text caches (the peer's exact work)
 *   hybrid        full UNet + LoRA on both text encoders + a learned <SAR> token (encoders run every step);
 *                 no peer (diffusers has no single script for it); shown for the demo's budget
 * Times are medians over the steps after the first two (the machine is shared: run it when it is quiet).
 *
 *   npx tsx bench/training-step.ts [--steps N]
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Schema } from "effect"
import { selectBackend } from "../adapters/tfjs/backend.ts"
import { encodeLatents } from "../adapters/tfjs/encoding/latent-cache.ts"
import { encodeText } from "../adapters/tfjs/encoding/text-cache.ts"
import { trainModel } from "../adapters/tfjs/training/trainer.ts"
import type { StepRecord } from "../adapters/tfjs/training/training-checkpoint.ts"
import { resolveAdaptation } from "../framework/declaration/adaptation.ts"
import { Components, type ComponentsInput } from "../framework/declaration/components.ts"
import { Training } from "../framework/declaration/training.ts"
import { prepareSyntheticData } from "../test/training/prepared-data.ts"
import { median } from "./median.ts"

const BASE = "test/fixtures/pipelines/sdxl-tiny"
const stepsAt = process.argv.indexOf("--steps")
const STEPS = stepsAt >= 0 ? Number(process.argv[stepsAt + 1]) : 12
const BATCH = 2

const quiet = { progress: () => Effect.void, metrics: () => Effect.void, log: () => Effect.void }

const stepMs = (dir: string, name: string, components: ComponentsInput, caches: boolean) =>
  Effect.gen(function*() {
    const workDir = join(dir, name)
    yield* trainModel({
      base: BASE,
      adaptation: resolveAdaptation(Schema.decodeUnknownSync(Components)(components), "sdxl"),
      train: Schema.decodeUnknownSync(Training)({ steps: STEPS, batchSize: BATCH, seed: 1, checkpointEvery: 1000 }),
      dataDir: join(dir, "data"),
      ...(caches ? { latentsDir: join(dir, "latents"), textDir: join(dir, "text") } : {}),
      workDir,
      ...quiet
    })
    const history = (JSON.parse(readFileSync(join(workDir, "training.json"), "utf8")) as { steps: Array<StepRecord> }).steps
    return median(history.slice(2).map((r) => (1000 * BATCH) / r.imagesPerSecond))
  })

const main = Effect.gen(function*() {
  const dir = mkdtempSync(join(tmpdir(), "sardine-bench-training-"))
  try {
    yield* selectBackend("cpu")
    yield* prepareSyntheticData(join(dir, "data"), { n: 4, size: 32, seed: 1 })
    yield* encodeLatents(join(BASE, "vae"), join(dir, "data"), join(dir, "latents"), () => Effect.void)
    yield* encodeText(BASE, join(dir, "data"), join(dir, "text"), () => Effect.void)
    const rows: Array<[string, string, number]> = []
    for (const backend of ["cpu", "wasm"]) {
      yield* selectBackend(backend)
      rows.push([backend, "full UNet", yield* stepMs(dir, `${backend}-full`, { unet: { _tag: "full", lr: 1e-3 } }, true)])
      rows.push([
        backend,
        "hybrid",
        yield* stepMs(dir, `${backend}-hybrid`, {
          unet: { _tag: "full", lr: 1e-3 },
          textEncoders: { _tag: "lora", rank: 4, lr: 1e-3 },
          token: { token: "<SAR>", init: "radar", lr: 1e-2 }
        }, false)
      ])
    }
    const peer = JSON.parse(execFileSync(".venv/bin/python", ["bench/training_step_peer.py", String(STEPS)], { encoding: "utf8" })) as Record<string, number>
    console.log(`tiny SDXL-like fixture, batch ${BATCH}, ${STEPS} steps, median ms per step`)
    for (const [name, ms] of Object.entries(peer)) console.log(`  peer ${name.padEnd(16)} full UNet  ${ms.toFixed(1)} ms`)
    for (const [backend, config, ms] of rows) {
      const ratio = config === "full UNet" ? `  (${(ms / peer["torch-2-threads"]!).toFixed(1)}× torch on 2 threads)` : ""
      console.log(`  sardine ${backend.padEnd(13)} ${config.padEnd(10)} ${ms.toFixed(1)} ms${ratio}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

Effect.runPromise(main).catch((error) => {
  console.error(error)
  process.exit(1)
})
