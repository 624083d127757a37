import { Effect, Layer, Stream } from "effect"
import { DatasetsLive } from "../../adapters/data/datasets-live.ts"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { webDataset } from "../../framework/declaration/dataset.ts"
import { Datasets } from "../../framework/services/datasets.ts"

/*
 * Streams every sample of a shard pattern through the prepare pipeline (complex array → amplitude →
 * per-image normalisation → 256-pixel centre crop) and prints, as JSON, how many samples there were,
 * the seconds it took and the process's peak resident memory. Usage: stream-shards.script.ts <pattern>
 */

const pattern = process.argv[2]!
const started = performance.now()
const program = Effect.gen(function*() {
  const datasets = yield* Datasets
  const dataset = webDataset(pattern, { image: "sar.npy", caption: "meta.json#caption.MID", unit: "amplitude", resolution: { size: 256 } })
  return yield* datasets.samples(dataset).pipe(Stream.runFold(0, (n, item) => n + (item._tag === "Sample" ? 1 : 0)))
})
const samples = await Effect.runPromise(Effect.provide(program, DatasetsLive.pipe(Layer.provide(ImageIOLive))))
const seconds = (performance.now() - started) / 1000
console.log(JSON.stringify({ samples, seconds, peakRssMiB: process.resourceUsage().maxRSS / 1024 }))
