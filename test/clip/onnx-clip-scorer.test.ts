import { Effect, Either, Exit } from "effect"
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import { clipPixelValues } from "../../adapters/onnx/clip-image-preprocess.ts"
import { OnnxClipScorersLive } from "../../adapters/onnx/onnx-clip-scorer.ts"
import { loadClipTokenizer } from "../../adapters/tokenizer/tokenizer-files.ts"
import { clipAlignment, type Embeddings } from "../../framework/metrics/embedding-distances.ts"
import type { Raster } from "../../framework/services/image-io.ts"
import { type ClipScorer, ClipScorers } from "../../framework/services/scorer.ts"

/** The ONNX CLIP scorer on the tiny model of tools/make_tiny_clip_onnx.py, against its torch / PIL / transformers reference. */

const folder = fileURLToPath(new URL("../fixtures/clip", import.meta.url))
const reference = JSON.parse(readFileSync(join(folder, "reference.json"), "utf8"))
const float32s = (b64: string) => {
  const b = Buffer.from(b64, "base64")
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))
}
const images: Array<Raster> = reference.images.map((i: any) => ({ width: i.width, height: i.height, channels: i.channels, data: float32s(i.data) }))
const config = { size: 16, cropHeight: 16, cropWidth: 16, mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] } as const

/** Float32 networks on two runtimes: unit embeddings agree to 1e-6 (the float64 reference differs from onnxruntime by ~1e-7). */
const expectRows = (actual: Embeddings, expected: number[][], label: string) => {
  expect(actual.count).toBe(expected.length)
  expected.forEach((row, r) =>
    row.forEach((v, k) => {
      if (!(Math.abs(actual.data[r * actual.dim + k]! - v) <= 1e-6)) expect.fail(`${label}[${r}][${k}] = ${actual.data[r * actual.dim + k]}, reference ${v}`)
    })
  )
}

const withScorer = <A, E>(use: (scorer: ClipScorer) => Effect.Effect<A, E>, from = folder) =>
  Effect.runPromise(
    Effect.scoped(Effect.flatMap(Effect.flatMap(ClipScorers, (s) => s.load(from)), use)).pipe(Effect.provide(OnnxClipScorersLive))
  )

const broken = mkdtempSync(join(tmpdir(), "sardine-clip-"))
afterAll(() => rmSync(broken, { recursive: true, force: true }))

/** A copy of the fixture folder with one file replaced (or removed when `content` is undefined). */
const variant = (name: string, file: string, content: string | undefined) => {
  const dir = join(broken, name)
  mkdirSync(dir, { recursive: true })
  for (const f of readdirSync(folder)) {
    if (f !== file) copyFileSync(join(folder, f), join(dir, f))
    else if (content !== undefined) writeFileSync(join(dir, f), content)
  }
  return dir
}

describe("CLIP preprocessing", () => {
  it("equals PIL's float bicubic resize + torchvision's centre crop + CLIP normalisation", () => {
    const ours = clipPixelValues(images, config)
    const theirs = float32s(reference.pixelValues)
    expect(ours.length).toBe(theirs.length)
    let worst = 0
    for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - theirs[i]!))
    // Same arithmetic in the same order: equal to the last bit.
    expect(worst).toBe(0)
  })
})

describe("the shared CLIP tokenizer reads the scorer's files", () => {
  it("token ids equal transformers' CLIPTokenizer (padding, truncation to 16, unknown case and punctuation)", async () => {
    const tokenizer = await Effect.runPromise(loadClipTokenizer(folder))
    expect(tokenizer.maxLength).toBe(16)
    reference.texts.forEach((text: string, k: number) => expect(Array.from(tokenizer.encode(text)), text).toEqual(reference.inputIds[k]))
  })
})

describe("ONNX CLIP scorer", () => {
  it("embeds images and texts like the torch reference; alignment is 100 · cosine", async () => {
    const { img, txt } = await withScorer((scorer) => Effect.all({ img: scorer.embedImages(images), txt: scorer.embedTexts(reference.texts) }))
    expect(img.dim).toBe(12)
    expectRows(img, reference.imageEmbeds, "image")
    expectRows(txt, reference.textEmbeds, "text")
    const scores = Effect.runSync(clipAlignment(img, txt))
    reference.alignment.forEach((s: number, k: number) => expect(Math.abs(scores[k]! - s)).toBeLessThanOrEqual(1e-4))
  })

  it("batches larger than one model call give the same embeddings", async () => {
    const many = Array.from({ length: 5 }, () => images).flat()
    const img = await withScorer((scorer) => scorer.embedImages(many))
    expect(img.count).toBe(20)
    expectRows(img, Array.from({ length: 5 }, () => reference.imageEmbeds).flat(), "image")
  })

  it("refuses images it cannot take, naming them", async () => {
    const outcome = (raster: Raster) =>
      withScorer((scorer) => Effect.either(scorer.embedImages([images[0]!, raster]))).then((e) => (Either.isLeft(e) ? e.left.message : "accepted"))
    expect(await outcome({ width: 2, height: 1, channels: 1, data: Float32Array.of(0.5, 255) })).toBe(
      "image 1: value 255 at pixel 1 is outside [0, 1] (divide 8-bit pixels by 255)"
    )
    expect(await outcome({ width: 1, height: 1, channels: 4, data: Float32Array.of(0, 0, 0, 1) })).toBe(
      "image 1: has 4 bands; the scorer takes grey (1) or RGB (3)"
    )
  })

  it("a broken model folder fails to load, naming the file and the problem", async () => {
    const failure = async (dir: string) => {
      const exit = await Effect.runPromiseExit(Effect.scoped(Effect.flatMap(ClipScorers, (s) => s.load(dir))).pipe(Effect.provide(OnnxClipScorersLive)))
      if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error("expected a failure")
      return exit.cause.error.message
    }
    const corrupt = variant("corrupt", "text_encoder.onnx", "not a model")
    expect(await failure(corrupt)).toMatch(new RegExp(`^${join(corrupt, "text_encoder.onnx")}: cannot load the ONNX model`))
    const noConfig = variant("no-config", "preprocessor_config.json", undefined)
    expect(await failure(noConfig)).toMatch(new RegExp(`^${join(noConfig, "preprocessor_config.json")}: cannot read`))
    const badMean = variant(
      "bad-mean",
      "preprocessor_config.json",
      JSON.stringify({ size: { shortest_edge: 16 }, crop_size: { height: 16, width: 16 }, image_mean: [0.5], image_std: [1, 1, 1] })
    )
    expect(await failure(badMean)).toBe(`${join(badMean, "preprocessor_config.json")}: image_mean must be three numbers`)
    const wrongCrop = variant(
      "wrong-crop",
      "preprocessor_config.json",
      JSON.stringify({ size: 24, crop_size: 24, image_mean: [0, 0, 0], image_std: [1, 1, 1] })
    )
    expect(await failure(wrongCrop)).toBe(`${join(wrongCrop, "image_encoder.onnx")}: input pixel_values has size 16 in dimension 2, sardine feeds 24`)
    const longer = variant("longer-context", "tokenizer_config.json", JSON.stringify({ model_max_length: 77 }))
    expect(await failure(longer)).toBe(`${join(longer, "text_encoder.onnx")}: input input_ids has size 16 in dimension 1, sardine feeds 77`)
    // tools/make_onnx_without_outputs.py: onnxruntime loads a graph with no outputs; the scorer refuses it.
    const noOutput = variant("no-output", "image_encoder.onnx", undefined)
    copyFileSync(fileURLToPath(new URL("../fixtures/onnx/image-encoder-without-outputs.onnx", import.meta.url)), join(noOutput, "image_encoder.onnx"))
    expect(await failure(noOutput)).toBe(`${join(noOutput, "image_encoder.onnx")}: has no output`)
  })
})
