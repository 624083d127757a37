/**
 * Can the demo's SAR CLIP judge an optical rendering? (issue 22: the frozen base draws the prompted
 * optical layouts, yet its unseen-prompt retrieval sits at chance.) Renders the same synthetic layouts
 * (seeded; one layout, several renderings) as single-look SAR (the demo's reference), as 16-look SAR
 * (SAR radiometry, little speckle), as optical scenes (grey: the channels' mean, as the generate step
 * writes a sample) and as optical scenes with single-look-like grain; keeps the scenes whose class is
 * one of the demo study's prompts' (framework/steps/caption-scene.ts), and scores each against those
 * prompts with the CLIP exactly as the evaluate step does (framework/metrics/prompt-following.ts):
 * top-1 retrieval of the own class's prompt and the alignment gap, per class and per split.
 * `--samples NAME=DIR` (repeatable) adds a folder `sardine generate` or a generate step wrote: each
 * image scored against the demo's prompts, its own being the one of its prompt's class — so images
 * sampled with other wording ("optical image of …") are judged with the demo's. `--wording W` scores
 * against the demo's prompts with "SAR image of" replaced by W ("optical image of", or "" for none):
 * whether a judge reads a rendering depends on the prompts' modality word too.
 *
 *   npx tsx tools/demo-clip-modalities.ts [--clip experiments/demo/sar-clip] [--n 400] [--seed 99]
 *       [--wording "SAR image of"] [--samples NAME=DIR ...] [--json]
 */
import { NodeContext } from "@effect/platform-node"
import { Chunk, Effect, Stream } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { ClipScorersLive } from "../adapters/clip-scorer/clip-scorers-live.ts"
import { syntheticSamples } from "../adapters/data/synthetic/synthetic-samples.ts"
import { ImageIOLive } from "../adapters/images/image-io-live.ts"
import { selectBackend } from "../adapters/tfjs/backend.ts"
import { synthetic } from "../framework/declaration/dataset.ts"
import { experimentsOf } from "../framework/declaration/experiment.ts"
import { promptsOf } from "../framework/declaration/generation.ts"
import { loadDeclaration } from "../framework/declaration/load.ts"
import { measurePromptFollowing } from "../framework/metrics/prompt-following.ts"
import { type GeneratedSample, samplesIndexFile } from "../framework/services/engine.ts"
import { ImageIO, type Raster } from "../framework/services/image-io.ts"
import { ClipScorers } from "../framework/services/scorer.ts"
import { sceneOf } from "../framework/steps/caption-scene.ts"
import { option } from "./command-line.ts"

const clipDir = option("clip", "experiments/demo/sar-clip")
const n = Number(option("n", "400"))
const seed = Number(option("seed", "99"))
const SIZE = 32
/** `--samples NAME=DIR`, every occurrence. */
const sampleFolders = process.argv.flatMap((arg, i) => {
  if (arg !== "--samples") return []
  const [name = "", dir] = (process.argv[i + 1] ?? "").split(/=(.*)/s, 2)
  if (dir === undefined) throw new Error("--samples needs NAME=DIR")
  return [{ name, dir }]
})

// The demo baseline's prompts, as the evaluate step scores them: one per scene class.
const demo = await Effect.runPromise(loadDeclaration("experiments/demo/study.ts").pipe(Effect.provide(NodeContext.layer)))
const baseline = experimentsOf(demo.declaration).find((e) => e.baseline)!
const declared = promptsOf(baseline.generate)
const wording = option("wording", "SAR image of")
const prompts = declared.map((p) => ({ ...p, text: p.text.replace("SAR image of", wording).trim() }))
const sceneOfPrompt = declared.map((p) => sceneOf(p.text)!)

const renderings = [
  { name: "SAR, 1 look (the reference)", dataset: synthetic({ n, size: SIZE, looks: 1, seed }) },
  { name: "SAR, 16 looks", dataset: synthetic({ n, size: SIZE, looks: 16, seed }) },
  { name: "optical", dataset: synthetic({ modality: "optical", n, size: SIZE, seed }) },
  { name: "optical, grain ≤ 1", dataset: synthetic({ modality: "optical", n, size: SIZE, seed, grain: 1 }) }
]

/** A sample's grey [0, 1] raster: its channels' mean, from the training range [−1, 1]. */
const greyRaster = (pixels: Float32Array, channels: number): Raster => {
  const data = new Float32Array(SIZE * SIZE)
  for (let p = 0; p < data.length; p++) {
    let sum = 0
    for (let c = 0; c < channels; c++) sum += pixels[p * channels + c]!
    data[p] = (sum / channels + 1) / 2
  }
  return { width: SIZE, height: SIZE, channels: 1, data }
}

await Effect.runPromise(selectBackend("wasm"))

/** An image with its own prompt's index among the demo's (by scene class). */
interface Scored {
  readonly own: number
  readonly raster: Raster
}

const ownOf = (text: string) => sceneOfPrompt.indexOf(sceneOf(text) ?? "")

const renderedScenes = (dataset: (typeof renderings)[number]["dataset"]) =>
  Effect.map(Stream.runCollect(syntheticSamples(dataset)), (items) =>
    Chunk.toReadonlyArray(items).flatMap((item): Array<Scored> => {
      if (item._tag !== "Sample") return []
      const own = ownOf(item.sample.caption)
      return own < 0 ? [] : [{ own, raster: greyRaster(item.sample.pixels, item.sample.channels) }]
    }))

/** A sample folder's images (normalised amplitude in [0, 1], as the evaluate step reads them). */
const sampledScenes = (dir: string) =>
  Effect.gen(function*() {
    const io = yield* ImageIO
    const samples = JSON.parse(readFileSync(join(dir, samplesIndexFile), "utf8")) as ReadonlyArray<GeneratedSample>
    const kept = samples.filter((s) => ownOf(s.prompt) >= 0)
    return yield* Effect.forEach(kept, (s) => Effect.map(io.read(join(dir, s.tiff)), (raster): Scored => ({ own: ownOf(s.prompt), raster })))
  })

const sources = [
  ...renderings.map((r) => ({ name: r.name, scenes: renderedScenes(r.dataset) })),
  ...sampleFolders.map((f) => ({ name: f.name, scenes: sampledScenes(f.dir) }))
]

const measure = Effect.scoped(Effect.gen(function*() {
  const scorer = yield* (yield* ClipScorers).load(clipDir)
  const texts = yield* scorer.embedTexts(prompts.map((p) => p.text))
  return yield* Effect.forEach(sources, (source) =>
    Effect.gen(function*() {
      const scenes = yield* source.scenes
      const images = yield* scorer.embedImages(scenes.map((s) => s.raster))
      const { following } = yield* measurePromptFollowing(images, texts, scenes.map((s) => s.own), 3)
      if (following._tag === "Absent") throw new Error(following.reason)
      const meanOver = (picked: ReadonlyArray<number>, of: (i: number) => number) =>
        picked.length === 0 ? NaN : picked.reduce((a, i) => a + of(i), 0) / picked.length
      const indices = (keep: (own: number) => boolean) => scenes.flatMap((s, i) => (keep(s.own) ? [i] : []))
      const summary = (picked: ReadonlyArray<number>) => ({
        scenes: picked.length,
        top1: meanOver(picked, (i) => following.images[i]!.top1),
        gap: meanOver(picked, (i) => following.images[i]!.gap)
      })
      return {
        rendering: source.name,
        byClass: prompts.map((p, c) => ({ scene: sceneOfPrompt[c]!, split: p.split, ...summary(indices((own) => own === c)) })),
        seen: summary(indices((own) => prompts[own]!.split === "seen")),
        unseen: summary(indices((own) => prompts[own]!.split === "unseen"))
      }
    }))
}))

const results = await Effect.runPromise(measure.pipe(Effect.provide(ClipScorersLive), Effect.provide(ImageIOLive), Effect.provide(NodeContext.layer)))

if (process.argv.includes("--json")) {
  console.log(JSON.stringify({ clip: clipDir, n, seed, wording, prompts: prompts.map((p) => p.text), results }))
} else {
  const f = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : "–")
  console.log(`${clipDir}: top-1 retrieval (and alignment gap) of the demo's ${prompts.length} prompts ("${wording} …") on synthetic scenes of their classes`)
  console.log(`(${n} layouts, seed ${seed}, ${SIZE} × ${SIZE}; chance top-1 ${f(1 / prompts.length)})`)
  console.log("")
  const classes = results[0]!.byClass
  console.log(`| rendering | ${classes.map((c) => `${c.scene} (${c.split}, ${c.scenes})`).join(" | ")} | seen | unseen |`)
  console.log(`| --- | ${classes.map(() => "---").join(" | ")} | --- | --- |`)
  for (const r of results) {
    const cell = (s: { top1: number; gap: number }) => `${f(s.top1)} (${f(s.gap, 1)})`
    console.log(`| ${r.rendering} | ${r.byClass.map(cell).join(" | ")} | ${cell(r.seen)} | ${cell(r.unseen)} |`)
  }
}
