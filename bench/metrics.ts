/**
 * Speed of sardine's SAR metrics against scikit-image / scipy on the same inputs, in one run.
 *
 *   npx tsx bench/metrics.ts
 *
 * 1. The `sardine stats` GLCM chain on a 1024 × 1024 amplitude image: normalise, quantise to 64
 *    levels, GLCM at distance 1 and angles 0/45/90/135°, all ten properties.
 * 2. The amplitude distances between two sets of 100 images of 512 × 512: per-image
 *    normalisation, pooling, Wasserstein-1, KS, KL, JS, Hellinger, Bhattacharyya.
 * 3. `sardine stats <1024² float32 TIFF> --json` as a whole process, against a Python process
 *    computing the same (both include interpreter start-up and imports).
 *
 * Inputs are drawn from a seeded generator and written to a temporary folder that the peer
 * (bench/metrics_peer.py) reads. Times are the minimum over repetitions, in wall-clock and in CPU
 * time (the machine may be shared); ratio = sardine / reference, so ≤ 1 means sardine is no slower. The values of both sides are
 * compared too, so the two really computed the same thing.
 */
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { ImageIOLive } from "../adapters/images/image-io-live.ts"
import { amplitudeDistances, domainBinning, normalisedSamples } from "../framework/metrics/amplitude-distances.ts"
import { GLCM_PROPERTIES, type GlcmProperties } from "../framework/metrics/glcm.ts"
import type { SampleImage } from "../framework/metrics/metric-input.ts"
import { imageTexture } from "../framework/metrics/texture-sets.ts"
import { ImageIO } from "../framework/services/image-io.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const GLCM_SIDE = 1024
const SET_IMAGES = 100
const SET_SIDE = 512
const GLCM_REPS = 30
const DISTANCE_REPS = 2
const PROCESS_REPS = 3

/** Seeded uniform stream (LCG), open interval (0, 1). */
const uniform = (seed: number) => () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
  return (seed + 0.5) / 2 ** 32
}

/**
 * Speckled amplitude: sqrt(texture × Gamma(looks, 1/looks)), with a smooth texture of stripes so
 * the GLCM has structure to find.
 */
const speckle = (side: number, looks: number, seed: number, into = new Float32Array(side * side)) => {
  const u = uniform(seed)
  for (let r = 0; r < side; r++) {
    for (let c = 0; c < side; c++) {
      let gamma = 0
      for (let k = 0; k < looks; k++) gamma -= Math.log(u())
      const texture = 1 + 0.6 * Math.sin((r + 2 * c) / 23)
      into[r * side + c] = Math.sqrt((texture * gamma) / looks)
    }
  }
  return into
}

const makeSet = (looks: number, seed: number) => {
  const all = new Float32Array(SET_IMAGES * SET_SIDE * SET_SIDE)
  for (let i = 0; i < SET_IMAGES; i++) {
    speckle(SET_SIDE, looks, seed + i, all.subarray(i * SET_SIDE * SET_SIDE, (i + 1) * SET_SIDE * SET_SIDE))
  }
  return all
}

/** Wall and CPU milliseconds of each repetition (each list sorted), and the last result. */
const timed = <A>(reps: number, run: () => A) => {
  const wall: Array<number> = []
  const cpu: Array<number> = []
  let result!: A
  for (let k = 0; k < reps; k++) {
    const start = performance.now()
    const startCpu = process.cpuUsage()
    result = run()
    const used = process.cpuUsage(startCpu)
    wall.push(performance.now() - start)
    cpu.push((used.user + used.system) / 1000)
  }
  const ascending = (a: number, b: number) => a - b
  return { ms: { wall: wall.sort(ascending), cpu: cpu.sort(ascending) }, result }
}

const sardineDistances = (setA: Float32Array, setB: Float32Array) => {
  const pool = (set: Float32Array, name: string) => {
    const pixels = SET_SIDE * SET_SIDE
    const pooled = new Float32Array(set.length)
    for (let i = 0; i < SET_IMAGES; i++) {
      const image: SampleImage = { name: `${name}[${i}]`, width: SET_SIDE, height: SET_SIDE, data: set.subarray(i * pixels, (i + 1) * pixels) }
      pooled.set(Effect.runSync(normalisedSamples(image)), i * pixels)
    }
    return pooled
  }
  return Effect.runSync(
    amplitudeDistances({ name: "a", samples: pool(setA, "a") }, { name: "b", samples: pool(setB, "b") }, domainBinning({ kind: "amplitude" }, 256), 1)
  )
}

const maxRelativeDifference = (pairs: Array<[number, number]>) => Math.max(...pairs.map(([x, y]) => Math.abs(x - y) / Math.max(Math.abs(y), 1e-12)))

const glcmPairs = (ours: GlcmProperties, theirs: Record<string, number[][]>) =>
  GLCM_PROPERTIES.flatMap((name) => ours[name].flatMap((row, d) => row.map((x, a): [number, number] => [x, theirs[name]![d]![a]!])))

const processMs = (command: string, args: ReadonlyArray<string>) =>
  timed(PROCESS_REPS, () => execFileSync(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 26 }).toString())

type Times = { readonly wall: ReadonlyArray<number>; readonly cpu: ReadonlyArray<number> }

const row = (task: string, clock: "wall" | "cpu", ours: Times, theirs: Times) => {
  const a = ours[clock][0]!
  const b = theirs[clock][0]!
  return `${task.padEnd(52)} ${clock.padStart(5)} ${a.toFixed(1).padStart(10)} ${b.toFixed(1).padStart(12)} ${(a / b).toFixed(2).padStart(7)}`
}

const run = async () => {
  const folder = mkdtempSync(join(tmpdir(), "sardine-bench-metrics-"))
  try {
    const python = join(root, ".venv/bin/python")
    const peer = (mode: string, reps: number) =>
      JSON.parse(execFileSync(python, ["bench/metrics_peer.py", mode, folder, String(reps)], { cwd: root, maxBuffer: 1 << 26 }).toString())

    // The GLCM runs first, while this process holds no more than a `sardine stats` process would.
    console.log(`GLCM input in ${folder} …`)
    const image = speckle(GLCM_SIDE, 4, 1)
    writeFileSync(join(folder, "glcm.f32"), image)
    const tif = join(folder, "glcm.tif")
    await Effect.runPromise(
      Effect.provide(
        Effect.flatMap(ImageIO, (io) => io.writeFloatTiff(tif, { width: GLCM_SIDE, height: GLCM_SIDE, channels: 1, data: image })),
        ImageIOLive
      )
    )
    const glcmImage: SampleImage = { name: "glcm", width: GLCM_SIDE, height: GLCM_SIDE, data: image }
    const settings = { levels: 64, distances: [1], anglesDegrees: [0, 45, 90, 135] }
    console.log("GLCM: sardine, scikit-image …")
    const glcm = timed(GLCM_REPS, () => Effect.runSync(imageTexture(glcmImage, settings)))
    const peerGlcm = peer("glcm", GLCM_REPS)

    console.log("set inputs …")
    const setA = makeSet(4, 1000)
    const setB = makeSet(3, 5000)
    writeFileSync(join(folder, "set-a.f32"), setA)
    writeFileSync(join(folder, "set-b.f32"), setB)
    console.log("amplitude distances: sardine, scipy …")
    const dist = timed(DISTANCE_REPS, () => sardineDistances(setA, setB))
    const peerDistances = peer("distances", DISTANCE_REPS)

    console.log("whole processes …")
    const sardineProcess = processMs(process.execPath, ["bin/sardine.js", "stats", tif, "--levels", "64", "--json"])
    const peerProcess = processMs(python, ["bench/metrics_peer.py", "stats", tif])

    const glcmAgreement = maxRelativeDifference(glcmPairs(glcm.result, peerGlcm.props))
    const ours = dist.result
    const distanceAgreement = maxRelativeDifference(
      (["wasserstein", "ks", "kl", "js", "hellinger", "bhattacharyya"] as const).map((k): [number, number] => [ours[k], peerDistances.values[k]])
    )
    const processGlcm = JSON.parse(sardineProcess.result).glcm as GlcmProperties
    const processAgreement = maxRelativeDifference(glcmPairs(processGlcm, JSON.parse(peerProcess.result).glcm))

    console.log(
      `\n${"task (minimum over repetitions)".padEnd(52)} ${"clock".padStart(5)} ${"sardine ms".padStart(10)} ${"reference ms".padStart(12)} ${
        "ratio".padStart(7)
      }`
    )
    const glcmTask = `GLCM chain 1024², 64 levels, d 1, 4 angles (${GLCM_REPS}×)`
    const distanceTask = `amplitude distances 2 × 100 × 512² (${DISTANCE_REPS}×)`
    console.log(row(glcmTask, "wall", glcm.ms, peerGlcm.ms))
    console.log(row(glcmTask, "cpu", glcm.ms, peerGlcm.ms))
    console.log(row(distanceTask, "wall", dist.ms, peerDistances.ms))
    console.log(row(distanceTask, "cpu", dist.ms, peerDistances.ms))
    console.log(row(`whole process: stats of a 1024² TIFF (${PROCESS_REPS}×)`, "wall", sardineProcess.ms, peerProcess.ms))
    const median = (t: Times) => t.wall[t.wall.length >> 1]!.toFixed(1)
    console.log(`\nwall-clock medians: GLCM ${median(glcm.ms)} vs ${median(peerGlcm.ms)} ms; distances ${median(dist.ms)} vs ${median(peerDistances.ms)} ms`)
    console.log(
      `largest relative difference between the two sides: GLCM ${glcmAgreement.toExponential(1)}, distances ${distanceAgreement.toExponential(1)}, processes ${
        processAgreement.toExponential(1)
      }`
    )
    console.log("cpu = the process's CPU time (all threads); on a shared machine it is steadier than wall time")
    console.log("reference: scikit-image graycomatrix + graycoprops; scipy.stats wasserstein_distance, ks_2samp, entropy, jensenshannon; numpy")
  } finally {
    rmSync(folder, { recursive: true, force: true })
  }
}

await run()
