/**
 * Synthetic scene generator throughput: 256 × 256 scenes per second (layout + SAR + optical, in
 * memory and written to disk), and the speckle / texture sampling against numpy on the same sizes
 * in the same run. There is no peer for the whole generator.
 *
 *   npx tsx bench/synth.ts [--scenes 40] [--repeats 20]
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { DatasetsLive } from "../adapters/data/datasets-live.ts"
import { SeededRandom } from "../adapters/data/seeded-random.ts"
import { generateScene } from "../adapters/data/synthetic/scene-generator.ts"
import { ImageIOLive } from "../adapters/images/image-io-live.ts"
import { synthetic } from "../framework/declaration/dataset.ts"
import { Datasets } from "../framework/services/datasets.ts"

const SIZE = 256
const option = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`)
  return at >= 0 ? Number(process.argv[at + 1]) : fallback
}
const scenes = option("scenes", 40)
const repeats = option("repeats", 20)

const seconds = (run: () => void) => {
  const start = performance.now()
  run()
  return (performance.now() - start) / 1000
}

const bestMs = (draw: () => void) => {
  let best = Infinity
  for (let r = 0; r < repeats; r++) best = Math.min(best, seconds(draw) * 1000)
  return best
}

const spec = { size: SIZE, seed: 1, looks: 1, exclude: [], lookDirection: "right" as const, incidenceAngle: 35 }
generateScene(spec, 1_000_000) // warm-up (JIT)

const inMemory = seconds(() => {
  for (let i = 0; i < scenes; i++) generateScene(spec, i)
})
const sarOnly = seconds(() => {
  for (let i = 0; i < scenes; i++) generateScene(spec, i, { sar: true, optical: false })
})
const fourLooks = seconds(() => {
  for (let i = 0; i < scenes; i++) generateScene({ ...spec, looks: 4 }, i, { sar: true, optical: false })
})

const folder = mkdtempSync(join(tmpdir(), "sardine-bench-synth-"))
const start = performance.now()
await Effect.runPromise(
  Effect.flatMap(Datasets, (d) => d.writeSynthetic(synthetic({ n: scenes, size: SIZE, seed: 1 }), join(folder, "set"))).pipe(
    Effect.provide(DatasetsLive.pipe(Layer.provideMerge(ImageIOLive)))
  )
)
const written = (performance.now() - start) / 1000
rmSync(folder, { recursive: true, force: true })

console.log(`synthetic scenes, ${SIZE} × ${SIZE}, ${scenes} scenes (Node ${process.version})`)
console.log(`  layout + SAR + optical, in memory   ${(scenes / inMemory).toFixed(1)} scenes/s`)
console.log(`  layout + SAR (1 look)               ${(scenes / sarOnly).toFixed(1)} scenes/s`)
console.log(`  layout + SAR (4 looks)              ${(scenes / fourLooks).toFixed(1)} scenes/s`)
console.log(`  sardine synth (all files written)   ${(scenes / written).toFixed(1)} scenes/s`)

// Speckle and texture draws: one 256 × 256 float32 field each, best of `repeats`.
const n = SIZE * SIZE
const field = new Float32Array(n)
const rng = new SeededRandom(0)
const ours: Record<string, number> = {
  "exponential (L = 1 speckle)": bestMs(() => {
    for (let i = 0; i < n; i++) field[i] = rng.exponential()
  }),
  "gamma L = 4 speckle": bestMs(() => {
    for (let i = 0; i < n; i++) field[i] = rng.gamma(4) / 4
  }),
  "gamma texture nu = 4 (K)": bestMs(() => {
    for (let i = 0; i < n; i++) field[i] = rng.gamma(4) / 4
  }),
  "inverse-gamma texture alpha = -1.8 (G0)": bestMs(() => {
    for (let i = 0; i < n; i++) field[i] = 0.8 / rng.gamma(1.8)
  })
}
const peer = JSON.parse(
  execFileSync(".venv/bin/python", ["bench/synth_peer.py", String(SIZE), String(repeats)], { encoding: "utf8" })
) as { numpy: string; ms: Record<string, number> }

console.log(`\nsampling one ${SIZE} × ${SIZE} field, best of ${repeats} (numpy ${peer.numpy}, default_rng / PCG64)`)
console.log(`  ${"draw".padEnd(42)}${"sardine ms".padStart(11)}${"numpy ms".padStart(10)}${"sardine/numpy".padStart(15)}`)
for (const [name, ms] of Object.entries(ours)) {
  const theirs = peer.ms[name]!
  console.log(`  ${name.padEnd(42)}${ms.toFixed(2).padStart(11)}${theirs.toFixed(2).padStart(10)}${(ms / theirs).toFixed(2).padStart(15)}`)
}
