/**
 * WebDataset shard reading speed on shards in SARLO-80's layout: per sample a 1024² complex64 `.sar.npy`
 * (8 MiB), its 8-bit amplitude `.sar.png` and a `.meta.json` with captions, packed by GNU tar.
 *
 *   npx tsx bench/webdataset.ts [--samples N] [--per-shard K]
 *
 * Prints MB/s of shard bytes for the tar reader alone (every member read), for the prepare pipeline on
 * the complex arrays (amplitude |z|, per-image A/(mean + 3·std), 512-pixel tiles) and on the PNGs,
 * and the peak resident memory. The machine is shared: run it when it is quiet and say the load.
 */
import { Effect, Layer, Stream } from "effect"
import { mkdtempSync, rmSync, statSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { join } from "node:path"
import sharp from "sharp"
import { DatasetsLive } from "../adapters/data/datasets-live.ts"
import { tarMembers } from "../adapters/data/webdataset-tar.ts"
import { ImageIOLive } from "../adapters/images/image-io-live.ts"
import { sarlo80 } from "../framework/declaration/dataset.ts"
import { Datasets } from "../framework/services/datasets.ts"
import { npyBytes, writeShard } from "../test/webdataset/shard-builder.ts"

const argument = (name: string, fallback: number) => {
  const at = process.argv.indexOf(name)
  return at >= 0 ? Number(process.argv[at + 1]) : fallback
}
const SAMPLES = argument("--samples", 48)
const PER_SHARD = argument("--per-shard", 16)
const SIDE = 1024

const dir = mkdtempSync(join(tmpdir(), "sardine-bench-webdataset-"))
try {
  // One speckle field for every sample: the reader's work does not depend on the values.
  let state = 1
  const slc = Float32Array.from({ length: 2 * SIDE * SIDE }, () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5)
  const amplitude = Buffer.alloc(SIDE * SIDE)
  for (let i = 0; i < SIDE * SIDE; i++) amplitude[i] = Math.min(255, Math.round(Math.hypot(slc[2 * i]!, slc[2 * i + 1]!) * 300))
  const png = await sharp(amplitude, { raw: { width: SIDE, height: SIDE, channels: 1 } }).png().toBuffer()
  const array = npyBytes("<c8", [SIDE, SIDE], slc)
  const shards: Array<string> = []
  for (let first = 0; first < SAMPLES; first += PER_SHARD) {
    const shard = join(dir, "train", `chunk_000`, `shard-${String(first / PER_SHARD).padStart(5, "0")}.tar`)
    writeShard(
      shard,
      Array.from({ length: Math.min(PER_SHARD, SAMPLES - first) }, (_, i) => {
        const key = String(first + i).padStart(8, "0")
        return [
          [`${key}.sar.npy`, array],
          [`${key}.sar.png`, png],
          [`${key}.meta.json`, JSON.stringify({ caption: { SHORT: "a port", MID: `scene ${key}, a port`, LONG: `scene ${key}, a port with cranes` } })]
        ] as const
      }).flat()
    )
    shards.push(shard)
  }
  const megabytes = shards.reduce((total, s) => total + statSync(s).size, 0) / 1e6

  const timed = async <A>(run: () => Promise<A>) => {
    const start = performance.now()
    const result = await run()
    return { result, seconds: (performance.now() - start) / 1000 }
  }
  const raw = await timed(async () => {
    let members = 0
    for (const shard of shards) for await (const _ of tarMembers(shard, () => true, 1 << 30)) members++
    return members
  })
  const prepare = (image: "sar.npy" | "sar.png") =>
    timed(() =>
      Effect.runPromise(Effect.provide(
        Effect.flatMap(Datasets, (d) =>
          d.samples(sarlo80(join(dir, "train"), { caption: "MID", image, resolution: { size: 512, mode: "tile" } })).pipe(
            Stream.runFold(0, (n, item) => n + (item._tag === "Sample" ? 1 : 0))
          )),
        DatasetsLive.pipe(Layer.provide(ImageIOLive))
      ))
    )
  const complex = await prepare("sar.npy")
  const amplitudePng = await prepare("sar.png")
  const rate = (seconds: number) => `${(megabytes / seconds).toFixed(0)} MB/s`
  console.log(`${SAMPLES} samples in ${shards.length} shards, ${megabytes.toFixed(0)} MB; load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}`)
  console.log(`tar reader, every member:              ${rate(raw.seconds)} (${raw.result} members, ${raw.seconds.toFixed(1)} s)`)
  console.log(
    `prepare, .sar.npy complex → amplitude: ${rate(complex.seconds)} (${complex.result} tiles of 512², ${(SAMPLES / complex.seconds).toFixed(1)} samples/s)`
  )
  console.log(
    `prepare, .sar.png 8-bit amplitude:     ${rate(amplitudePng.seconds)} (${amplitudePng.result} tiles of 512², ${
      (SAMPLES / amplitudePng.seconds).toFixed(1)
    } samples/s)`
  )
  console.log(`peak resident memory: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
