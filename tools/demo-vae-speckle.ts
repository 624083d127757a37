/**
 * Does a VAE keep single-look speckle? Encodes held-out synthetic single-look SAR scenes (the demo
 * study's reference declaration: 32 × 32, seed 99) with a pipeline's VAE, decodes the posterior mean,
 * and compares the per-image intensity ENL (framework/metrics/amplitude-statistics.ts, on the [0, 1]
 * amplitude the demo's generate step writes: channels averaged) of the scenes and of their
 * reconstructions. A VAE that blurs the speckle away raises the ENL (≈ 2 for the first demo base,
 * against ≈ 0.4 for the scenes); one that passes it keeps the ratio near 1.
 *
 *   npx tsx tools/demo-vae-speckle.ts [--base experiments/demo/base] [--count 64] [--json]
 */
import * as tf from "@tensorflow/tfjs-core"
import { Chunk, Effect, Stream } from "effect"
import { syntheticSamples } from "../adapters/data/synthetic/synthetic-samples.ts"
import { autoencoderKlDecode, autoencoderKlEncode } from "../adapters/tfjs/autoencoder-kl.ts"
import { selectBackend } from "../adapters/tfjs/backend.ts"
import { imageBatch } from "../adapters/tfjs/encoding/image-batch.ts"
import { layersOf } from "../adapters/tfjs/layers.ts"
import { loadPipeline } from "../adapters/tfjs/pipeline-loader.ts"
import { synthetic } from "../framework/declaration/dataset.ts"
import { amplitudeStatistics } from "../framework/metrics/amplitude-statistics.ts"
import { option } from "./command-line.ts"

const baseDir = option("base", "experiments/demo/base")
const count = Number(option("count", "64"))
const SIZE = 32

await Effect.runPromise(selectBackend("wasm"))
const pipeline = await Effect.runPromise(loadPipeline(baseDir))
const vae = { plan: pipeline.vae.plan, layers: layersOf(pipeline.vae.parameters) }

const items = await Effect.runPromise(Stream.runCollect(syntheticSamples(synthetic({ n: count, size: SIZE, looks: 1, seed: 99 }))))
const samples = Chunk.toReadonlyArray(items).flatMap((item) => (item._tag === "Sample" ? [item.sample] : []))

/** [B, H, W, C] in [−1, 1] → per image, the [0, 1] amplitude averaged over channels (as decodeAmplitude). */
const amplitudes = (images: tf.Tensor4D): Array<Float32Array> => {
  const unit = tf.tidy(() => tf.mean(tf.clipByValue(tf.add(tf.div(images, 2), 0.5), 0, 1), -1))
  const values = unit.dataSync() as Float32Array
  unit.dispose()
  return Array.from({ length: images.shape[0] }, (_, i) => values.slice(i * SIZE * SIZE, (i + 1) * SIZE * SIZE))
}
const enlOf = (data: Float32Array, name: string) => Effect.runSync(amplitudeStatistics({ name, width: SIZE, height: SIZE, data })).enl

const images = imageBatch(samples.map((s) => ({ pixels: s.pixels, height: s.height, width: s.width, channels: s.channels })), 3)
const { logvar, mean } = autoencoderKlEncode(vae.plan, vae.layers, images)
const latentStd = tf.tidy(() => Math.sqrt(tf.moments(tf.mul(mean, vae.plan.config.scaling_factor)).variance.dataSync()[0]!))
const posteriorStd = tf.tidy(() => tf.mean(tf.exp(tf.mul(logvar, 0.5))).dataSync()[0]!)
const reconstruction = autoencoderKlDecode(vae.plan, vae.layers, mean)
const scenes = amplitudes(images).map((a, i) => enlOf(a, `scene ${i}`))
const decoded = amplitudes(reconstruction).map((a, i) => enlOf(a, `reconstruction ${i}`))
const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const meanOf = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0) / values.length
const l1 = tf.tidy(() => tf.mean(tf.abs(tf.sub(reconstruction, images))).dataSync()[0]!)
if (process.argv.includes("--json")) {
  console.log(JSON.stringify({
    latent: mean.shape.slice(1),
    enl: { scenes: { median: median(scenes), mean: meanOf(scenes) }, reconstructions: { median: median(decoded), mean: meanOf(decoded) } },
    latentStd,
    posteriorStd,
    l1
  }))
} else {
  console.log(`${baseDir}: VAE of ${mean.shape.slice(1).join(" × ")} latents, ${count} single-look SAR scenes (32 × 32, seed 99)`)
  console.log(`  per-image ENL  scenes: median ${median(scenes).toFixed(3)}, mean ${meanOf(scenes).toFixed(3)}`)
  console.log(`  per-image ENL  reconstructions: median ${median(decoded).toFixed(3)}, mean ${meanOf(decoded).toFixed(3)}`)
  console.log(
    `  scaled latents: std ${latentStd.toFixed(3)} (scaling factor ${vae.plan.config.scaling_factor}); posterior std ${posteriorStd.toFixed(3)} (unscaled)`
  )
  console.log(`  ratio of medians ${(median(decoded) / median(scenes)).toFixed(2)}; reconstruction L1 ${l1.toFixed(4)} (in [−1, 1])`)
}
