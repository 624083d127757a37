/**
 * Generation speed per sampler on the shipped demo base (experiments/demo/base: 32 × 32 images, 8 × 8
 * latents): sardine's tfjs engine (wasm), sardine's ONNX engine (the base exported by `sardine export
 * --format onnx`'s exporter, on onnxruntime-node's CPU provider) and diffusers' StableDiffusionPipeline
 * (PyTorch, 2 threads) with the same scheduler class, from the same noise, in one run.
 *
 *   npx tsx bench/generate.ts [--samples N] [--steps S]
 *
 * Per sample after one warm-up: prompt encoding, S guided UNet calls (2S − 1 for Heun), the VAE decode
 * (sardine also writes its TIFF and PNG). Every side prints the mean of the first image: the same
 * sampler computed the same image. The machine is shared: run it when it is quiet and say the load.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Schema } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Generation, type GenerationInput } from "../framework/declaration/generation.ts"
import { ImageIO } from "../framework/services/image-io.ts"
import { ImageIOLive } from "../adapters/images/image-io-live.ts"
import { sampleStem } from "../adapters/images/sample-files.ts"
import { generateOnnxSamples, onnxRuntimeInfo, openOnnxPipeline } from "../adapters/onnx/onnx-engine.ts"
import { makeTorchEngine } from "../adapters/torch/torch-engine.ts"
import { OnnxManifest, onnxManifestFile } from "../framework/services/onnx-pipeline.ts"
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
      const onnxFolder = join(folder, "onnx-export")
      const torch = yield* makeTorchEngine({ python: { python: join(root, ".venv/bin/python"), source: "the repository's .venv" } })
      yield* torch.exportOnnx({ base: { base: { _tag: "diffusers", path: BASE, family: "sd15" }, path: BASE }, useEma: false, out: onnxFolder })
      const manifest = Schema.decodeUnknownSync(OnnxManifest)(JSON.parse(readFileSync(join(onnxFolder, onnxManifestFile), "utf8")))
      const runtime = onnxRuntimeInfo()
      // Opened once, as the tfjs models are loaded once: the times are sampling, not loading.
      const onnxPipeline = yield* openOnnxPipeline(onnxFolder, manifest, runtime.providers)
      const generation = (c: typeof cases[number], seeds: ReadonlyArray<number>) =>
        Schema.decodeUnknownSync(Generation)({
          prompts: [PROMPT],
          seeds,
          sampler: c.sampler,
          schedulerConfig: c.schedulerConfig,
          steps: STEPS,
          guidanceScale: GUIDANCE
        })
      const engines = {
        tfjs: (c: typeof cases[number], seeds: ReadonlyArray<number>, outDir: string) =>
          Effect.asVoid(generateSamples({ models, generate: generation(c, seeds), resolution: 32, outDir, progress: () => Effect.void })),
        onnx: (c: typeof cases[number], seeds: ReadonlyArray<number>, outDir: string) =>
          generateOnnxSamples(onnxPipeline, { generate: generation(c, seeds), resolution: 32, outDir, progress: () => Effect.void })
      }
      const results: Record<string, Record<keyof typeof engines, { times: Array<number>; firstMean: number }>> = {}
      for (const c of cases) {
        const timed = (engine: keyof typeof engines) =>
          Effect.gen(function*() {
            const run = engines[engine]
            yield* run(c, [1000], join(folder, engine, c.name, "warm-up"))
            const times: Array<number> = []
            let firstMean = 0
            for (let seed = 0; seed < SAMPLES; seed++) {
              const outDir = join(folder, engine, c.name, `seed-${seed}`)
              const start = performance.now()
              yield* run(c, [seed], outDir)
              times.push(performance.now() - start)
              if (seed === 0) {
                const image = yield* Effect.flatMap(ImageIO, (io) => io.read(join(outDir, `${sampleStem(0, seed, 0)}.tif`)))
                firstMean = image.data.reduce((a, v) => a + v, 0) / image.data.length
              }
            }
            return { times, firstMean }
          })
        results[c.name] = { tfjs: yield* timed("tfjs"), onnx: yield* timed("onnx") }
      }
      return { results, runtime }
    }).pipe(Effect.scoped, Effect.provide(ImageIOLive), Effect.provide(NodeContext.layer))
  )

  console.log(
    `demo base, ${STEPS} steps, guidance ${GUIDANCE}, ${SAMPLES} samples per sampler (median); load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}`
  )
  console.log(`onnxruntime-node ${ours.runtime.version}, execution providers ${ours.runtime.providers.join(", ")}`)
  console.log(
    "sampler            tfjs wasm   onnxruntime-node   diffusers 2 threads   (images/s)   onnx/tfjs   onnx/diffusers   first image mean (tfjs / onnx / diffusers)"
  )
  for (const c of cases) {
    const [tfjs, onnx] = [1000 / median(ours.results[c.name]!.tfjs.times), 1000 / median(ours.results[c.name]!.onnx.times)]
    const diffusers = 1000 / median(peer[c.name]!.msPerSample)
    const means = [ours.results[c.name]!.tfjs.firstMean, ours.results[c.name]!.onnx.firstMean, peer[c.name]!.firstMean].map((m) => m.toFixed(5)).join(" / ")
    console.log(
      `${c.name.padEnd(18)} ${tfjs.toFixed(2).padStart(9)} ${onnx.toFixed(2).padStart(18)} ${diffusers.toFixed(2).padStart(21)}                ${
        (onnx / tfjs).toFixed(2).padStart(9)
      } ${(onnx / diffusers).toFixed(2).padStart(16)}   ${means}`
    )
  }
} finally {
  rmSync(folder, { recursive: true, force: true })
}
