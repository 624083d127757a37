import { Effect, Exit } from "effect"
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { clipFolderLayout, ClipScorersLive } from "../../adapters/clip-scorer/clip-scorers-live.ts"
import { selectBackend } from "../../adapters/tfjs/backend.ts"
import { clipAlignment, type Embeddings } from "../../framework/metrics/embedding-distances.ts"
import type { Raster } from "../../framework/services/image-io.ts"
import { type ClipScorer, ClipScorers } from "../../framework/services/scorer.ts"
import { get, readReference, type ReferenceTensor } from "../models/reference.ts"

/**
 * One ClipScorers for both folder layouts: a transformers CLIPModel folder is scored on tfjs, its ONNX
 * export (docs/sar-clip.md's recipe) on onnxruntime, and both agree with transformers' embeddings of
 * the same images and texts (tools/make_clip_model_goldens.py).
 */

const FIXTURES = "test/fixtures/clip-model"
const TRANSFORMERS = `${FIXTURES}/tiny-clip`
const ONNX = `${FIXTURES}/tiny-clip-onnx`
const reference = JSON.parse(readFileSync(`${FIXTURES}/reference.json`, "utf8"))
const float32s = (b64: string) => {
  const b = Buffer.from(b64, "base64")
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))
}
const images: Array<Raster> = reference.images.map((i: any) => ({ width: i.width, height: i.height, channels: i.channels, data: float32s(i.data) }))
const texts: Array<string> = reference.texts

const withScorer = <A, E>(folder: string, use: (scorer: ClipScorer) => Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(Effect.flatMap(ClipScorers, (s) => s.load(folder)), use)).pipe(Effect.provide(ClipScorersLive)))

const failure = async (folder: string) => {
  const exit = await Effect.runPromiseExit(Effect.scoped(Effect.flatMap(ClipScorers, (s) => s.load(folder))).pipe(Effect.provide(ClipScorersLive)))
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error("expected a failure")
  return exit.cause.error.message
}

/** Unit rows of a [count, dim] reference tensor. */
const unit = (t: ReferenceTensor): Array<Array<number>> =>
  Array.from({ length: t.shape[0]! }, (_, r) => {
    const row = Array.from(t.data.subarray(r * t.shape[1]!, (r + 1) * t.shape[1]!))
    const norm = Math.hypot(...row)
    return row.map((v) => v / norm)
  })

/** Float32 networks against the float64 reference: unit embeddings agree to 2e-6. */
const expectRows = (actual: Embeddings, expected: Array<Array<number>>, label: string) => {
  expect(actual.count).toBe(expected.length)
  expected.forEach((row, r) =>
    row.forEach((v, k) => {
      if (!(Math.abs(actual.data[r * actual.dim + k]! - v) <= 2e-6)) expect.fail(`${label}[${r}][${k}] = ${actual.data[r * actual.dim + k]}, reference ${v}`)
    })
  )
}

const scratch = mkdtempSync(join(tmpdir(), "sardine-clip-scorer-"))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

/** A copy of the transformers fixture with one file replaced (or removed when `content` is undefined). */
const variant = (name: string, file: string, content: string | undefined) => {
  const dir = join(scratch, name)
  mkdirSync(dir, { recursive: true })
  for (const f of readdirSync(TRANSFORMERS)) {
    if (f !== file) copyFileSync(join(TRANSFORMERS, f), join(dir, f))
    else if (content !== undefined) writeFileSync(join(dir, f), content)
  }
  return dir
}

describe("ClipScorers picks the implementation from the folder's layout", () => {
  it("ONNX encoders go to onnxruntime, a CLIPModel folder to tfjs", async () => {
    expect(await Effect.runPromise(clipFolderLayout(TRANSFORMERS))).toBe("transformers")
    expect(await Effect.runPromise(clipFolderLayout(ONNX))).toBe("onnx")
    expect(await Effect.runPromise(clipFolderLayout("test/fixtures/clip"))).toBe("onnx")
  })

  it("a folder with neither layout is refused, naming it and what a CLIP folder holds", async () => {
    const config = variant("no-weights", "model.safetensors", undefined)
    expect(await failure(config)).toBe(
      `${config}: is not a CLIP model folder: it holds neither image_encoder.onnx + text_encoder.onnx nor a transformers CLIPModel (config.json + model.safetensors); see docs/sar-clip.md`
    )
  })
})

describe("the tfjs CLIP scorer", () => {
  let golden: Map<string, ReferenceTensor>
  beforeAll(async () => {
    await Effect.runPromise(selectBackend("wasm"))
    golden = await readReference(`${FIXTURES}/reference.safetensors`)
  })

  it("embeds images and texts as transformers' CLIPModel does (sardine's preprocessing and tokenizer)", async () => {
    const { img, txt } = await withScorer(TRANSFORMERS, (scorer) => Effect.all({ img: scorer.embedImages(images), txt: scorer.embedTexts(texts) }))
    expect(img.dim).toBe(12)
    expectRows(img, unit(get(golden, "image_embeds")), "image")
    expectRows(txt, unit(get(golden, "text_embeds")), "text")
  })

  it("scores the same as the ONNX export of the same model, batch by batch", async () => {
    const many = Array.from({ length: 5 }, () => images).flat()
    const manyTexts = Array.from({ length: 5 }, () => texts).flat()
    const score = (folder: string) =>
      withScorer(folder, (scorer) =>
        Effect.gen(function*() {
          const img = yield* scorer.embedImages(many)
          const txt = yield* scorer.embedTexts(manyTexts)
          return { img, txt, alignment: yield* clipAlignment(img, txt) }
        }))
    const tfjs = await score(TRANSFORMERS)
    const onnx = await score(ONNX)
    expect(tfjs.img.count).toBe(20)
    expectRows(tfjs.img, unit(get(golden, "image_embeds")).concat(...Array.from({ length: 4 }, () => unit(get(golden, "image_embeds")))), "tfjs image")
    for (const [a, b] of [[tfjs.img, onnx.img], [tfjs.txt, onnx.txt]] as const) {
      expect(a.dim).toBe(b.dim)
      a.data.forEach((v, i) => expect(Math.abs(v - b.data[i]!)).toBeLessThanOrEqual(2e-6))
    }
    tfjs.alignment.forEach((s, i) => expect(Math.abs(s - onnx.alignment[i]!)).toBeLessThanOrEqual(2e-4))
  })

  it("refuses images it cannot take, as the ONNX scorer does", async () => {
    const message = await withScorer(
      TRANSFORMERS,
      (scorer) => Effect.flip(scorer.embedImages([images[0]!, { width: 2, height: 1, channels: 1, data: Float32Array.of(0.5, 255) }]))
    )
    expect(message.message).toBe("image 1: value 255 at pixel 1 is outside [0, 1] (divide 8-bit pixels by 255)")
  })

  it("a folder whose parts disagree fails to load, naming the file and the rule", async () => {
    const longer = variant("longer-context", "tokenizer_config.json", JSON.stringify({ model_max_length: 77 }))
    expect(await failure(longer)).toBe(
      `${
        join(longer, "config.json")
      }: text_config.max_position_embeddings 16 is below the tokenizer's context 77 (set model_max_length in tokenizer_config.json)`
    )
    const crop = variant("crop", "preprocessor_config.json", JSON.stringify({ size: 24, crop_size: 24, image_mean: [0, 0, 0], image_std: [1, 1, 1] }))
    expect(await failure(crop)).toBe(`${join(crop, "preprocessor_config.json")}: crop_size 24 × 24 differs from vision_config.image_size 16`)
    const config = JSON.parse(readFileSync(join(TRANSFORMERS, "config.json"), "utf8"))
    const eos = variant("eos", "config.json", JSON.stringify({ ...config, text_config: { ...config.text_config, eos_token_id: 49407 } }))
    expect(await failure(eos)).toBe(`${join(eos, "config.json")}: text_config.eos_token_id 49407 is not the tokenizer's end-of-text id 573`)
    const { model_type: _type, ...untyped } = config
    const notClip = variant("not-clip", "config.json", JSON.stringify(untyped))
    expect(await failure(notClip)).toBe(`${join(notClip, "config.json")}: model_type must be "clip" (a transformers CLIPConfig), got nothing`)
    const narrow = variant("narrow", "config.json", JSON.stringify({ ...config, projection_dim: 8 }))
    expect(await failure(narrow)).toMatch(
      new RegExp(`^${join(narrow, "model.safetensors")}: CLIPModel: the weights do not match the config — 2 mis-shaped: text_projection.weight`)
    )
    const corrupt = variant("corrupt", "model.safetensors", "not safetensors")
    expect(await failure(corrupt)).toMatch(new RegExp(`^${join(corrupt, "model.safetensors")}: `))
  })
})
