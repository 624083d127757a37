/**
 * Generation speed per sampler on the shipped demo base (experiments/demo/base: 32 × 32 images, 8 × 8
 * latents): sardine's tfjs engine (wasm) against diffusers' StableDiffusionPipeline (PyTorch, 2 threads)
 * with the same scheduler class, from the same noise, in one run.
 *
 *   npx tsx bench/generate.ts [--samples N] [--steps S]
 *
 * Per sample after one warm-up: prompt encoding, S guided UNet calls (2S − 1 for Heun), the VAE decode
 * (sardine also writes its TIFF and PNG). Both sides print the mean of the first image: the same
 * sampler computed the same image. The machine is shared: run it when it is quiet and say the load.
 */
import { Effect, Schema } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Generation, type GenerationInput } from "../framework/declaration/generation.ts"
import { ImageIO } from "../framework/services/image-io.ts"
import { ImageIOLive } from "../adapters/images/image-io-live.ts"
import { selectBackend } from "../adapters/tfjs/backend.ts"
import { loadPipeline } from "../adapters/tfjs/pipeline-loader.ts"
import { diffusionModelsOf } from "../adapters/tfjs/sampling/diffusion-models.ts"
import { generateSamples } from "../adapters/tfjs/sampling/generate-samples.ts"
import { prepareBackendForTraining } from "../adapters/tfjs/training/trainer.ts"
import { median } from "./median.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const argument = (name: string, fallback: number) => {
  const at = process.argv.indexOf(name)
  return at >= 0 ? Number(process.argv[at + 1]) : fallback
}
const SAMPLES = argument("--samples", 4)
const STEPS = argument("--steps", 25)
const GUIDANCE = 7.5
const PROMPT = "SAR image of a harbour with ships near a bridge"
const BASE = join(root, "experiments/demo/base")

const cases: ReadonlyArray<
  { readonly name: string; readonly sampler: GenerationInput["sampler"] & string; readonly schedulerConfig: Record<string, unknown> }
> = [
  { name: "ddim", sampler: "ddim", schedulerConfig: {} },
  { name: "euler", sampler: "euler", schedulerConfig: {} },
  { name: "euler_ancestral", sampler: "euler_ancestral", schedulerConfig: {} },
  { name: "heun", sampler: "heun", schedulerConfig: {} },
  { name: "dpm++ 2m karras", sampler: "dpmsolver_multistep", schedulerConfig: { use_karras_sigmas: true } },
  { name: "dpm++ 2m sde", sampler: "dpmsolver_multistep", schedulerConfig: { algorithm_type: "sde-dpmsolver++" } },
  { name: "unipc", sampler: "unipc_multistep", schedulerConfig: {} }
]

const folder = mkdtempSync(join(tmpdir(), "sardine-bench-generate-"))
try {
  const peer = JSON.parse(execFileSync(
    join(root, ".venv/bin/python"),
    [join(root, "bench/generate_peer.py"), BASE, PROMPT, String(STEPS), String(GUIDANCE), String(SAMPLES), JSON.stringify(cases)],
    { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }
  )) as Record<string, { msPerSample: Array<number>; firstMean: number }>

  const ours = await Effect.runPromise(
    Effect.gen(function*() {
      yield* selectBackend("wasm")
      yield* prepareBackendForTraining
      const models = yield* diffusionModelsOf(yield* loadPipeline(BASE))
      const results: Record<string, { times: Array<number>; firstMean: number }> = {}
      for (const c of cases) {
        const run = (seeds: ReadonlyArray<number>, outDir: string) =>
          generateSamples({
            models,
            generate: Schema.decodeUnknownSync(Generation)({
              prompts: [PROMPT],
              seeds,
              sampler: c.sampler,
              schedulerConfig: c.schedulerConfig,
              steps: STEPS,
              guidanceScale: GUIDANCE
            }),
            resolution: 32,
            outDir,
            progress: () => Effect.void
          })
        yield* run([1000], join(folder, c.name, "warm-up"))
        const times: Array<number> = []
        let firstMean = 0
        for (let seed = 0; seed < SAMPLES; seed++) {
          const start = performance.now()
          const [sample] = yield* run([seed], join(folder, c.name, `seed-${seed}`))
          if (sample === undefined) return yield* Effect.dieMessage(`${c.name}: seed ${seed} generated no sample`)
          times.push(performance.now() - start)
          if (seed === 0) {
            const image = yield* Effect.flatMap(ImageIO, (io) => io.read(join(folder, c.name, `seed-${seed}`, sample.tiff)))
            firstMean = image.data.reduce((a, v) => a + v, 0) / image.data.length
          }
        }
        results[c.name] = { times, firstMean }
      }
      return results
    }).pipe(Effect.provide(ImageIOLive))
  )

  console.log(
    `demo base, ${STEPS} steps, guidance ${GUIDANCE}, ${SAMPLES} samples per sampler (median); load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}`
  )
  console.log("sampler            sardine wasm (images/s)   diffusers 2 threads (images/s)   first image mean (sardine / diffusers)")
  for (const c of cases) {
    const mine = 1000 / median(ours[c.name]!.times)
    const theirs = 1000 / median(peer[c.name]!.msPerSample)
    console.log(
      `${c.name.padEnd(18)} ${mine.toFixed(2).padStart(10)}                ${theirs.toFixed(2).padStart(10)}                     ${
        ours[c.name]!.firstMean.toFixed(5)
      } / ${peer[c.name]!.firstMean.toFixed(5)}`
    )
  }
} finally {
  rmSync(folder, { recursive: true, force: true })
}
