/**
 * The figures of docs/demo-base.md, from an actual run of experiments/demo/pretrain.ts and the exported
 * base (experiments/demo/base):
 *   docs/demo-base-curves.svg           training loss of both stages, from each train step's training-log.jsonl
 *   docs/demo-base-reconstructions.png  training scenes (odd rows) and the base VAE's reconstructions (even rows)
 *   docs/demo-base-samples.png          the base sampling the study's prompts in colour (one row per prompt, 8 seeds)
 * and prints the numbers the page quotes (parameters, file sizes, step times, latent statistics).
 * The generate steps of the run write single-channel amplitude previews (what the SAR metrics read);
 * these samples are the same pipeline and sampler decoded as RGB.
 *
 *   npx tsx tools/demo-base-figures.ts [--cache-dir .sardine] [--base experiments/demo/base] [--out docs] [--engine torch|tfjs]
 *
 * --engine names the engine the pretraining ran on (its steps are keyed by it; default torch, as docs/demo-base.md runs it).
 */
import { NodeContext } from "@effect/platform-node"
import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import sharp from "sharp"
import { selectBackend } from "../adapters/tfjs/backend.ts"
import { autoencoderKlDecode, autoencoderKlEncode } from "../adapters/tfjs/autoencoder-kl.ts"
import { imageBatch } from "../adapters/tfjs/encoding/image-batch.ts"
import { layersOf } from "../adapters/tfjs/layers.ts"
import { loadPipeline } from "../adapters/tfjs/pipeline-loader.ts"
import { disposeConditioning, promptConditioning, usesGuidance } from "../adapters/tfjs/sampling/conditioning.ts"
import { diffusionModelsOf } from "../adapters/tfjs/sampling/diffusion-models.ts"
import { sampleLatents, vaeScaleFactor } from "../adapters/tfjs/sampling/sample-image.ts"
import { makeSampler } from "../adapters/tfjs/sampling/sampler.ts"
import { type Experiment, type Study } from "../framework/declaration/experiment.ts"
import { promptsOf } from "../framework/declaration/generation.ts"
import { loadDeclaration } from "../framework/declaration/load.ts"
import { planWithFingerprints } from "../framework/plan/input-fingerprints.ts"
import { cacheLayout } from "../framework/runner/cache.ts"
import { readPreparedIndex, readPreparedPixels } from "../framework/steps/prepared-dataset.ts"
import { trainingCurveChart } from "../reports/charts/training-curve-chart.ts"
import { option } from "./command-line.ts"

const cacheDir = option("cache-dir", ".sardine")
const baseDir = option("base", "experiments/demo/base")
const outDir = option("out", "docs")
const engine = Schema.decodeUnknownSync(Schema.Literal("tfjs", "torch"))(option("engine", "torch"))
const SEEDS = 8
/** Preview pixels per image pixel. */
const ZOOM = 4

const loaded = await Effect.runPromise(loadDeclaration("experiments/demo/pretrain.ts").pipe(Effect.provide(NodeContext.layer)))
const { declaration } = loaded
const stages = (declaration as Study).experiments
// The keys `sardine run` used: with the fingerprints of the declared folders (the architecture).
const { plan } = await Effect.runPromise(planWithFingerprints(loaded, { cacheDir, engine }).pipe(Effect.provide(NodeContext.layer)))
const cache = cacheLayout(cacheDir)
const outputOf = (id: string) => cache.done(plan.steps.find((s) => s.id === id)!.key)

// Training curves and step times.
/** The fields of a training-log line this script reads. */
interface TrainingLogLine {
  readonly step: number
  readonly loss: number
  readonly images_per_s: number
}
const logOf = (stage: string) =>
  readFileSync(join(outputOf(`${stage}/train`), "training-log.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as TrainingLogLine)
const colours = ["#1f77b4", "#d62728"]
const panels = stages.map((stage, i) => {
  const log = logOf(stage.name)
  const batch = stage.train!.batchSize * stage.train!.gradientAccumulation
  const seconds = log.map((r) => batch / r.images_per_s).sort((a, b) => a - b)
  console.log(
    `${stage.name}: ${log.length} steps of ${batch} images, median ${(1000 * seconds[Math.floor(seconds.length / 2)]!).toFixed(0)} ms/step, ` +
      `training ${(seconds.reduce((a, b) => a + b, 0) / 60).toFixed(1)} min, loss ${log[0]!.loss.toFixed(4)} → ${log[log.length - 1]!.loss.toFixed(4)}`
  )
  return trainingCurveChart({
    id: `demo-base-${stage.name}`,
    metric: "loss",
    yTitle: stage.name === "vae" ? "VAE loss (L1 + KL)" : "denoising loss (min-SNR weighted MSE)",
    noisy: true,
    series: [{ label: stage.name, colour: colours[i % colours.length]!, points: log.map((r) => [r.step, r.loss] as const) }],
    width: 460,
    height: 300
  })
})
const width = panels.reduce((w, p) => w + p.width, 0)
const height = Math.max(...panels.map((p) => p.height))
let x = 0
const nested = panels.map((p) => {
  const svg = p.svg.replace("<svg ", `<svg x="${x}" y="0" `)
  x += p.width
  return svg
})
writeFileSync(
  join(outDir, "demo-base-curves.svg"),
  `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${nested.join("")}</svg>\n`
)

// The base: parameters and files.
await Effect.runPromise(selectBackend("wasm"))
const pipeline = await Effect.runPromise(loadPipeline(baseDir))
const count = (m: { readonly parameters: ReadonlyMap<string, tf.Tensor> }) => [...m.parameters.values()].reduce((n, t) => n + t.size, 0)
const counts = { unet: count(pipeline.unet), vae: count(pipeline.vae), text_encoder: count(pipeline.textEncoders[0]!) }
console.log(`parameters ${JSON.stringify(counts)}, total ${Object.values(counts).reduce((a, b) => a + b, 0)}`)
const sizeOf = (dir: string): number =>
  readdirSync(dir, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? sizeOf(join(dir, e.name)) : statSync(join(dir, e.name)).size), 0)
console.log(`${baseDir}: ${(sizeOf(baseDir) / 1e6).toFixed(2)} MB`)

const toBytes = (image: tf.Tensor4D) => tf.tidy(() => tf.round(tf.mul(tf.clipByValue(tf.add(tf.div(image, 2), 0.5), 0, 1), 255)))

const writeGrid = async (rows: ReadonlyArray<ReadonlyArray<Uint8Array>>, side: number, file: string) => {
  const columns = Math.max(...rows.map((r) => r.length))
  const w = columns * side
  const pixels = Buffer.alloc(w * rows.length * side * 3, 255)
  rows.forEach((row, r) =>
    row.forEach((image, c) => {
      for (let y = 0; y < side; y++) pixels.set(image.subarray(y * side * 3, (y + 1) * side * 3), ((r * side + y) * w + c * side) * 3)
    })
  )
  await sharp(pixels, { raw: { width: w, height: rows.length * side, channels: 3 } })
    .resize(w * ZOOM, rows.length * side * ZOOM, { kernel: "nearest" }).png().toFile(file)
}

// Reconstructions of training scenes, and the statistics of their scaled latents.
const vae = { plan: pipeline.vae.plan, layers: layersOf(pipeline.vae.parameters) }
const dataDir = outputOf(`${stages[0]!.name}/data`)
const index = await Effect.runPromise(readPreparedIndex(dataDir))
const shown = index.samples.slice(0, 24)
const pixels = await Effect.runPromise(Effect.forEach(shown, (s) => readPreparedPixels(dataDir, s)))
const images = imageBatch(pixels.map((p) => ({ pixels: p, height: index.height, width: index.width, channels: index.channels })), 3)
const { logvar, mean } = autoencoderKlEncode(vae.plan, vae.layers, images)
const scaled = tf.mul(mean, vae.plan.config.scaling_factor)
const moments = tf.moments(scaled)
const reconstruction = autoencoderKlDecode(vae.plan, vae.layers, mean)
console.log(
  `scaled latents: mean ${moments.mean.dataSync()[0]!.toFixed(3)}, std ${Math.sqrt(moments.variance.dataSync()[0]!).toFixed(3)}; ` +
    `posterior std ${tf.mean(tf.exp(tf.mul(logvar, 0.5))).dataSync()[0]!.toFixed(3)}; reconstruction L1 ${
      tf.mean(tf.abs(tf.sub(reconstruction, images))).dataSync()[0]!.toFixed(4)
    } (in [-1, 1])`
)
const side = index.width
const split = (t: tf.Tensor4D) => {
  const bytes = Uint8Array.from(toBytes(t).dataSync())
  return Array.from({ length: t.shape[0] }, (_, i) => bytes.subarray(i * side * side * 3, (i + 1) * side * side * 3))
}
const originals = split(images)
const reconstructed = split(reconstruction)
await writeGrid(
  [0, 12].flatMap((from) => [originals.slice(from, from + 12), reconstructed.slice(from, from + 12)]),
  side,
  join(outDir, "demo-base-reconstructions.png")
)

// Samples of the study's prompts, with the study's sampler settings.
const generate = (stages[stages.length - 1] as Experiment).generate
const models = await Effect.runPromise(diffusionModelsOf(pipeline))
const sampler = await Effect.runPromise(makeSampler(generate, models.scheduler.config, models.scheduler.file))
const latentSide = side / vaeScaleFactor(models.vae)
const rows: Array<Array<Uint8Array>> = []
for (const prompt of promptsOf(generate)) {
  const conditioning = promptConditioning(models, prompt.text, usesGuidance(generate.guidanceScale), {
    originalSize: [side, side],
    cropTopLeft: [0, 0],
    targetSize: [side, side]
  })
  const row: Array<Uint8Array> = []
  for (let seed = 0; seed < SEEDS; seed++) {
    const image = tf.tidy(() => {
      const latents = sampleLatents({
        models,
        sampler,
        conditioning,
        guidanceScale: generate.guidanceScale,
        size: [latentSide, latentSide],
        seed,
        replicate: 0
      })
      return toBytes(autoencoderKlDecode(vae.plan, vae.layers, tf.div(latents, vae.plan.config.scaling_factor)))
    })
    row.push(Uint8Array.from(image.dataSync()))
    image.dispose()
  }
  disposeConditioning(conditioning)
  rows.push(row)
  console.log(`row ${rows.length}: ${prompt.text}`)
}
await writeGrid(rows, side, join(outDir, "demo-base-samples.png"))
