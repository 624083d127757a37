/**
 * Training speed on CPU (issue 7): the tiny UNet2DConditionModel of bench/sampling.ts (block_out_channels
 * (32, 64), two layers per block, cross-attention dim 32, 32 × 32 latents) fully trained on batches of 8
 * by sardine's trainer on the wasm backend, against diffusers + PyTorch (2 threads) training the same
 * random-weight UNet on the same machine in the same run (and, for reference, on 1 thread, as sardine's wasm
 * backend runs); then bench/sampling.ts (30 guided Euler steps against the diffusers pipeline).
 *
 *   npm run bench:train [-- --steps N] [-- --no-sampling]
 *
 * The peer (bench/train_peer.py) builds the pipeline folder in a temporary folder and times its steps.
 * sardine then trains from that folder exactly as a `sardine run` does: synthetic scenes prepared at
 * 64 × 64, their latents and captions encoded once (the encode-latents / encode-text caches), then
 * `trainModel` — loss of the noisy latents through the UNet, gradients, AdamW (lr 1e-4, weight decay
 * 1e-2, as the peer's), per step. Its per-step times are the trainer's own (training.json). Both sides
 * skip two warm-up steps; figures are medians. The reference environment (.venv) is created with
 * tools/setup-reference-env.sh when missing. The machine may be shared: the load average is printed.
 * The last line is `ratio=<sardine ms per step / PyTorch ms per step>`.
 */
import { Effect, Schema } from "effect"
import { execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { selectBackend } from "../adapters/tfjs/backend.ts"
import { encodeLatents } from "../adapters/tfjs/encoding/latent-cache.ts"
import { encodeText } from "../adapters/tfjs/encoding/text-cache.ts"
import { trainModel } from "../adapters/tfjs/training/trainer.ts"
import type { StepRecord } from "../adapters/tfjs/training/training-checkpoint.ts"
import { resolveAdaptation } from "../framework/declaration/adaptation.ts"
import { Components } from "../framework/declaration/components.ts"
import { Training } from "../framework/declaration/training.ts"
import { prepareSyntheticData } from "../test/training/prepared-data.ts"
import { median } from "./median.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const stepsAt = process.argv.indexOf("--steps")
const STEPS = stepsAt >= 0 ? Number(process.argv[stepsAt + 1]) : 8
const SAMPLING = !process.argv.includes("--no-sampling")
const BATCH = 8
const WARM_UP = 2
const IMAGE_SIZE = 64

const python = join(root, ".venv/bin/python")
const loads = () => loadavg().map((l) => l.toFixed(1)).join(" ")
const quiet = { progress: () => Effect.void, metrics: () => Effect.void, log: () => Effect.void }

if (!existsSync(python)) execFileSync("bash", [join(root, "tools/setup-reference-env.sh")], { stdio: "inherit", cwd: root })

const folder = mkdtempSync(join(tmpdir(), "sardine-bench-train-"))
try {
  const pipelineDir = join(folder, "pipeline")
  const loadBefore = loads()
  const peer = JSON.parse(execFileSync(python, [join(root, "bench/train_peer.py"), pipelineDir, String(STEPS), String(BATCH)], {
    encoding: "utf8",
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"]
  })) as { msPerStep: { "1": Array<number>; "2": Array<number> } }

  const ours = await Effect.runPromise(Effect.gen(function*() {
    yield* selectBackend("wasm")
    const dataDir = join(folder, "data")
    yield* prepareSyntheticData(dataDir, { n: BATCH, size: IMAGE_SIZE, seed: 1 })
    yield* encodeLatents(join(pipelineDir, "vae"), dataDir, join(folder, "latents"), () => Effect.void)
    yield* encodeText(pipelineDir, dataDir, join(folder, "text"), () => Effect.void)
    const workDir = join(folder, "train")
    yield* trainModel({
      base: pipelineDir,
      adaptation: resolveAdaptation(Schema.decodeUnknownSync(Components)({ unet: { _tag: "full", lr: 1e-4, weightDecay: 1e-2 } }), "sd15"),
      train: Schema.decodeUnknownSync(Training)({ steps: WARM_UP + STEPS, batchSize: BATCH, seed: 1, checkpointEvery: 1_000_000 }),
      dataDir,
      latentsDir: join(folder, "latents"),
      textDir: join(folder, "text"),
      workDir,
      ...quiet
    })
    const history = (JSON.parse(readFileSync(join(workDir, "training.json"), "utf8")) as { steps: Array<StepRecord> }).steps
    return history.slice(WARM_UP).map((r) => (1000 * BATCH) / r.imagesPerSecond)
  }))
  const loadAfter = loads()

  const sampling = SAMPLING
    ? execFileSync(process.execPath, ["--import", "tsx", join(root, "bench/sampling.ts")], {
      encoding: "utf8",
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"]
    })
    : ""

  const mine = median(ours)
  const theirs = median(peer.msPerStep["2"])
  const row = (name: string, xs: ReadonlyArray<number>) =>
    `  ${name.padEnd(21)}${median(xs).toFixed(0).padStart(6)} ms per step (best ${Math.min(...xs).toFixed(0)}; ${xs.map((t) => t.toFixed(0)).join(", ")})`
  if (SAMPLING) console.log(`sampling (bench/sampling.ts):\n${sampling.trim().split("\n").map((l) => `  ${l}`).join("\n")}`)
  console.log(
    `training: tiny UNet2DConditionModel, batch ${BATCH}, 32 × 32 latents, ${STEPS} steps after ${WARM_UP} warm-up (median); load average ${loadBefore} before, ${loadAfter} after`
  )
  console.log(row("sardine wasm:", ours))
  console.log(row("PyTorch 2 threads:", peer.msPerStep["2"]))
  console.log(row("PyTorch 1 thread:", peer.msPerStep["1"]))
  console.log(`  sardine / PyTorch 1 thread: ${(mine / median(peer.msPerStep["1"])).toFixed(2)}`)
  console.log(`ratio=${(mine / theirs).toFixed(2)}`)
} finally {
  rmSync(folder, { recursive: true, force: true })
}
