import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Effect, Exit, Layer } from "effect"
import { readdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { DatasetsLive } from "../../adapters/data/datasets-live.ts"
import { ImageIOLive } from "../../adapters/images/image-io-live.ts"
import { FIXED_VOCABULARY, trainBpe, VocabularyTooSmall } from "../../adapters/tokenizer/bpe-trainer.ts"
import { words } from "../../adapters/tokenizer/clip-tokenizer.ts"
import { loadClipTokenizer } from "../../adapters/tokenizer/tokenizer-files.ts"
import { TokenizerTrainerLive } from "../../adapters/tokenizer/tokenizer-trainer-live.ts"
import { tokenizerCommand } from "../../framework/cli/tokenizer.ts"
import { temporaryFolder } from "../training/training-run.ts"
import { isTemporaryName } from "../../framework/files/atomic-write.ts"

/**
 * `sardine tokenizer train` on the real synthetic generator's captions: the folder it writes loads
 * with sardine's CLIP tokenizer, every caption word and every required word is one known token, the
 * files are the same for the same captions in any order, and bad input is named.
 */

const REQUIRED = "sar,optical,radar,image,water,bare,field,crops,forest,urban,roads,bridges,ships,near,with,one,two,three,ten"

const run = (args: ReadonlyArray<string>) =>
  Effect.runPromiseExit(
    Command.run(tokenizerCommand, { name: "sardine", version: "test" })(["node", "sardine", ...args]).pipe(
      Effect.provide(Layer.mergeAll(NodeContext.layer, TokenizerTrainerLive, DatasetsLive.pipe(Layer.provide(ImageIOLive))))
    )
  )

const messageOf = (exit: Exit.Exit<void, unknown>) => {
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error("expected a typed failure")
  return String((exit.cause.error as { message?: string }).message ?? exit.cause.error)
}

describe("sardine tokenizer train", () => {
  let folder: Awaited<ReturnType<typeof temporaryFolder>>
  let out: string
  beforeAll(async () => {
    folder = await temporaryFolder("bpe-trainer")
    out = join(folder.dir, "tokenizer")
    const exit = await run(["train", "--synthetic", "40", "--seed", "3", "--vocab-size", "2000", "--max-length", "32", "--words", REQUIRED, "--out", out])
    expect(Exit.isSuccess(exit)).toBe(true)
  })
  afterAll(() => folder.remove())

  it("writes a CLIP tokenizer folder that encodes every caption word and required word as one known token", async () => {
    expect((await readdir(out)).sort()).toEqual(["merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"])
    const tokenizer = await Effect.runPromise(loadClipTokenizer(out))
    expect(tokenizer.maxLength).toBe(32)
    // CLIP's layout: 512 byte symbols first, the special tokens last.
    expect(tokenizer.bosId).toBe(tokenizer.size - 2)
    expect(tokenizer.eosId).toBe(tokenizer.size - 1)
    const captions = [
      "SAR image of a harbour with three ships near a bridge",
      "optical image of farmland with crop fields and bare fields crossed by two roads near a village"
    ]
    for (const caption of captions) {
      const ids = tokenizer.encode(caption)
      const content = tokenizer.tokenIds(caption)
      // One token per word: the word itself with its end-of-word mark.
      expect(content, caption).toEqual(words(caption.toLowerCase()).map((w) => tokenizer.idOf(`${w}</w>`)))
      expect(ids[0]).toBe(tokenizer.bosId)
      expect(ids[content.length + 1]).toBe(tokenizer.eosId)
    }
    for (const word of REQUIRED.split(",")) {
      const ids = tokenizer.tokenIds(word)
      expect(ids.length, word).toBe(1)
      expect(tokenizer.idOf(`${word}</w>`), word).toBe(ids[0])
    }
    // A word the captions never had still encodes, as byte symbols.
    expect(tokenizer.tokenIds("sentinel").every((id) => id < 2 * 256)).toBe(true)
  })

  it("learns the same files from the same captions in any order, and reads caption files", async () => {
    const lines = (await readFile(join(out, "merges.txt"), "utf8")).split("\n")
    expect(lines[0]).toBe("#version: 0.2")
    const captions = ["a river crossed by a bridge", "open water with two ships", "a town with urban blocks and streets"]
    const txt = join(folder.dir, "captions.txt")
    const jsonl = join(folder.dir, "metadata.jsonl")
    await writeFile(txt, `${captions.join("\n")}\n`)
    await writeFile(jsonl, captions.slice().reverse().map((text, i) => JSON.stringify({ file_name: `${i}.png`, text })).join("\n"))
    const fromTxt = join(folder.dir, "from-txt")
    const fromJsonl = join(folder.dir, "from-jsonl")
    expect(Exit.isSuccess(await run(["train", "--captions", txt, "--vocab-size", "1000", "--out", fromTxt]))).toBe(true)
    expect(Exit.isSuccess(await run(["train", "--captions", jsonl, "--vocab-size", "1000", "--out", fromJsonl]))).toBe(true)
    for (const file of ["vocab.json", "merges.txt", "tokenizer_config.json"]) {
      expect(await readFile(join(fromJsonl, file), "utf8"), file).toBe(await readFile(join(fromTxt, file), "utf8"))
    }
    const tokenizer = await Effect.runPromise(loadClipTokenizer(fromTxt))
    for (const caption of captions) expect(tokenizer.tokenIds(caption).length).toBe(words(caption).length)
  })

  it("stops at the vocabulary size and says which required word stays split", () => {
    const captions = ["a harbour with ships", "a harbour near a bridge"]
    const small = trainBpe(captions, { vocabSize: FIXED_VOCABULARY + 3, requiredWords: [] })
    expect(small.merges.length).toBe(3)
    expect(small.vocab.size).toBe(FIXED_VOCABULARY + 3)
    // The pairs of "harbour" are the most frequent (2 each); the tie goes to the smallest, (a, r).
    expect(small.merges[0]).toEqual(["a", "r"])
    expect(() => trainBpe(captions, { vocabSize: FIXED_VOCABULARY + 3, requiredWords: ["bridge"] })).toThrow(VocabularyTooSmall)
    expect(() => trainBpe(captions, { vocabSize: FIXED_VOCABULARY + 3, requiredWords: ["bridge"] })).toThrow(/"bridge"/)
  })

  it("names the caption file and line it cannot read, and refuses to overwrite", async () => {
    const bad = join(folder.dir, "bad.jsonl")
    await writeFile(bad, `${JSON.stringify({ text: "a lake" })}\n{"file_name": "x.png"}\n`)
    const badLine = await run(["train", "--captions", bad, "--vocab-size", "600", "--out", join(folder.dir, "never")])
    expect(messageOf(badLine)).toBe(`${bad}: line 2 has no "text" string`)
    const existing = await run(["train", "--synthetic", "2", "--vocab-size", "600", "--out", out])
    expect(messageOf(existing)).toContain("already exists")
    const nothing = await run(["train", "--vocab-size", "600", "--out", join(folder.dir, "never")])
    expect(Exit.isFailure(nothing)).toBe(true)
    expect((await readdir(folder.dir)).filter((n) => n.startsWith("never") || isTemporaryName(n))).toEqual([])
  })
})
