import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { loadClipTokenizer } from "../../adapters/tokenizer/tokenizer-files.ts"
import type { ClipTokenizer } from "../../adapters/tokenizer/clip-tokenizer.ts"

const FIXTURES = "test/fixtures/pipelines"

interface TokensReference {
  readonly captions: ReadonlyArray<string>
  readonly base: ReadonlyArray<ReadonlyArray<number>>
  readonly with_sar: ReadonlyArray<ReadonlyArray<number>>
  readonly with_sar_pad_bang: ReadonlyArray<ReadonlyArray<number>>
}

const reference = JSON.parse(await readFile(join(FIXTURES, "tokens.json"), "utf8")) as TokensReference

/** Every caption's ids, compared one by one so a failure names the caption. */
const expectSameIds = (tokenizer: ClipTokenizer, expected: ReadonlyArray<ReadonlyArray<number>>) => {
  reference.captions.forEach((caption, i) => {
    expect(Array.from(tokenizer.encode(caption)), JSON.stringify(caption)).toEqual(expected[i])
  })
}

describe("CLIP tokenizer against transformers' CLIPTokenizer", () => {
  it.effect("matches the ids of every caption with the base vocabulary (vocab.json + merges.txt)", () =>
    Effect.gen(function*() {
      const tokenizer = yield* loadClipTokenizer(join(FIXTURES, "sd1-tiny/tokenizer"))
      expect(tokenizer.maxLength).toBe(77)
      expectSameIds(tokenizer, reference.base)
    }))

  it.effect("keeps <SAR> whole once added, like tokenizer.add_tokens", () =>
    Effect.gen(function*() {
      const base = yield* loadClipTokenizer(join(FIXTURES, "sd1-tiny/tokenizer"))
      const tokenizer = base.addTokens(["<SAR>"])
      expect(tokenizer.size).toBe(base.size + 1)
      expect(tokenizer.idOf("<SAR>")).toBe(base.size)
      expectSameIds(tokenizer, reference.with_sar)
      // Adding a token that already has an id changes nothing.
      expect(tokenizer.addTokens(["<SAR>", "a</w>"]).size).toBe(tokenizer.size)
    }))

  it.effect("reads <SAR> from added_tokens.json / added_tokens_decoder (classic files)", () =>
    Effect.gen(function*() {
      expectSameIds(yield* loadClipTokenizer(join(FIXTURES, "tokenizer-with-sar-classic")), reference.with_sar)
    }))

  it.effect("reads <SAR> from tokenizer.json (what transformers 5 saves)", () =>
    Effect.gen(function*() {
      expectSameIds(yield* loadClipTokenizer(join(FIXTURES, "tokenizer-with-sar-json")), reference.with_sar)
    }))

  it.effect("pads with \"!\" and keeps \"!\" whole when it is the padding token (SDXL tokenizer_2)", () =>
    Effect.gen(function*() {
      const tokenizer = (yield* loadClipTokenizer(join(FIXTURES, "sdxl-tiny/tokenizer_2"))).addTokens(["<SAR>"])
      expect(tokenizer.padId).toBe(0)
      expectSameIds(tokenizer, reference.with_sar_pad_bang)
    }))

  it.effect("encodes a batch as rows of encode", () =>
    Effect.gen(function*() {
      const tokenizer = yield* loadClipTokenizer(join(FIXTURES, "sd1-tiny/tokenizer"))
      const batch = tokenizer.encodeBatch(reference.captions.slice(0, 3))
      expect(Array.from(batch.subarray(77, 154))).toEqual(reference.base[1])
    }))
})

describe("tokenizer folder errors", () => {
  /** The SD-1 tokenizer folder copied with one file replaced; removed when the test's scope closes. */
  const brokenCopy = (file: string, content: string) =>
    Effect.acquireRelease(
      Effect.promise(async () => {
        const folder = await mkdtemp(join(tmpdir(), "sardine-tokenizer-"))
        await cp(join(FIXTURES, "sd1-tiny/tokenizer"), folder, { recursive: true })
        await writeFile(join(folder, file), content)
        return folder
      }),
      (folder) => Effect.promise(() => rm(folder, { recursive: true, force: true }))
    )

  it.scoped("names merges.txt and the line of a malformed merge", () =>
    Effect.gen(function*() {
      const folder = yield* brokenCopy("merges.txt", "#version: 0.2\na b\nonly-one-symbol\n")
      const result = yield* Effect.either(loadClipTokenizer(folder))
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left.file).toBe(join(folder, "merges.txt"))
        expect(result.left.message).toContain("merge 3")
      }
    }))

  it.scoped("names vocab.json when it is not JSON", () =>
    Effect.gen(function*() {
      const folder = yield* brokenCopy("vocab.json", "{not json")
      const result = yield* Effect.flip(loadClipTokenizer(folder))
      expect(result.file).toBe(join(folder, "vocab.json"))
      expect(result.reason).toContain("not valid JSON")
    }))

  it.scoped("refuses an added token with options it would match differently", () =>
    Effect.gen(function*() {
      const config = { model_max_length: 77, added_tokens_decoder: { "934": { content: "<X>", lstrip: true, normalized: true, special: false } } }
      const folder = yield* brokenCopy("tokenizer_config.json", JSON.stringify(config))
      const result = yield* Effect.flip(loadClipTokenizer(folder))
      expect(result.file).toBe(join(folder, "tokenizer_config.json"))
      expect(result.reason).toContain("lstrip")
    }))

  it.scoped("says which special token is missing from the vocabulary", () =>
    Effect.gen(function*() {
      const folder = yield* brokenCopy("special_tokens_map.json", JSON.stringify({ pad_token: "<pad>" }))
      const result = yield* Effect.flip(loadClipTokenizer(folder))
      expect(result.reason).toContain("padding token \"<pad>\"")
    }))

  it.scoped("names a tokenizer.json that is there but cannot be read (a link to itself) instead of taking it for absent", () =>
    Effect.gen(function*() {
      const folder = yield* brokenCopy("special_tokens_map.json", JSON.stringify({}))
      yield* Effect.promise(() => symlink("tokenizer.json", join(folder, "tokenizer.json")))
      const result = yield* Effect.flip(loadClipTokenizer(folder))
      expect(result.file).toBe(join(folder, "tokenizer.json"))
      expect(result.reason).toContain("ELOOP")
    }))
})
