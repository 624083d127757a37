/**
 * Sampling speed: 30 Euler steps with classifier-free guidance on the tiny UNet of issue 7
 * (block_out_channels (32, 64), two layers per block, cross-attention dim 32, 32 × 32 latents, 64 × 64
 * images), sardine's generateSamples on the wasm backend against diffusers' StableDiffusionPipeline
 * (PyTorch, 2 threads), in one run.
 *
 *   npx tsx bench/sampling.ts [--samples N]
 *
 * The peer (bench/sampling_peer.py) builds the random-weight pipeline folder in a temporary folder,
 * times its samples and exits; sardine then loads the same folder and samples the same seeds from the
 * same noise. Both print the mean amplitude of the first sample, so they really computed the same image.
 * Times are per sample after one warm-up sample: prompt encoding, 30 guided UNet steps and the VAE
 * decode (sardine also writes its TIFF and PNG). The machine is shared: run it when it is quiet.
 */
import { Effect, Schema } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Generation } from "../framework/declaration/generation.ts"
import { ImageIO } from "../framework/services/image-io.ts"
import { ImageIOLive } from "../adapters/images/image-io-live.ts"
import { selectBackend } from "../adapters/tfjs/backend.ts"
import { loadPipeline } from "../adapters/tfjs/pipeline-loader.ts"
import { diffusionModelsOf } from "../adapters/tfjs/sampling/diffusion-models.ts"
import { generateSamples } from "../adapters/tfjs/sampling/generate-samples.ts"
import { prepareBackendForTraining } from "../adapters/tfjs/training/trainer.ts"
import { median } from "./median.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const samplesAt = process.argv.indexOf("--samples")
const SAMPLES = samplesAt >= 0 ? Number(process.argv[samplesAt + 1]) : 4
const PROMPT = "a synthetic aperture radar image of a harbour with ships"
const STEPS = 30
const GUIDANCE = 7.5

const folder = mkdtempSync(join(tmpdir(), "sardine-bench-sampling-"))
try {
  const pipelineDir = join(folder, "pipeline")
  const peer = JSON.parse(execFileSync(
    join(root, ".venv/bin/python"),
    [join(root, "bench/sampling_peer.py"), pipelineDir, PROMPT, String(STEPS), String(GUIDANCE), String(SAMPLES)],
    { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }
  )) as { msPerSample: Array<number>; firstMean: number }

  const ours = await Effect.runPromise(
    Effect.gen(function*() {
      yield* selectBackend("wasm")
      // The kernels the Engine registers on wasm before it generates (engine-live.ts).
      yield* prepareBackendForTraining
      const pipeline = yield* loadPipeline(pipelineDir)
      const models = yield* diffusionModelsOf(pipeline)
      const run = (seeds: ReadonlyArray<number>, outDir: string) =>
        generateSamples({
          models,
          generate: Schema.decodeUnknownSync(Generation)({ prompts: [PROMPT], seeds, sampler: "euler", steps: STEPS, guidanceScale: GUIDANCE, resolution: 64 }),
          resolution: 64,
          outDir,
          progress: () => Effect.void
        })
      yield* run([1000], join(folder, "warm-up"))
      const times: Array<number> = []
      let firstMean = 0
      for (let seed = 0; seed < SAMPLES; seed++) {
        const start = performance.now()
        const [sample] = yield* run([seed], join(folder, `seed-${seed}`))
        if (sample === undefined) return yield* Effect.dieMessage(`seed ${seed} generated no sample`)
        times.push(performance.now() - start)
        if (seed === 0) {
          const image = yield* Effect.flatMap(ImageIO, (io) => io.read(join(folder, `seed-${seed}`, sample.tiff)))
          firstMean = image.data.reduce((a, v) => a + v, 0) / image.data.length
        }
      }
      return { times, firstMean }
    }).pipe(Effect.provide(ImageIOLive))
  )

  const mine = median(ours.times)
  const theirs = median(peer.msPerSample)
  console.log(
    `${STEPS} Euler steps, guidance ${GUIDANCE}, 32 × 32 latents, ${SAMPLES} samples each (median); load average ${
      loadavg().map((l) => l.toFixed(1)).join(" ")
    }`
  )
  console.log(`sardine wasm:        ${mine.toFixed(0)} ms per sample (first sample's mean amplitude ${ours.firstMean.toFixed(5)})`)
  console.log(`diffusers 2 threads: ${theirs.toFixed(0)} ms per sample (first sample's mean amplitude ${peer.firstMean.toFixed(5)})`)
  console.log(`ratio=${(mine / theirs).toFixed(2)}`)
} finally {
  rmSync(folder, { recursive: true, force: true })
}
