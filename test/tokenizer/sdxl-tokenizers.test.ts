import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFile } from "node:fs/promises"
import { loadClipTokenizer } from "../../adapters/tokenizer/tokenizer-files.ts"

/**
 * The SDXL architecture folder's two tokenizers (CLIP's BPE vocabulary from the open_clip_torch wheel,
 * tools/make_clip_vocabulary.py; SDXL's published tokenizer configs) read by sardine, against transformers'
 * CLIPTokenizer on the same folders (tools/make_sdxl_goldens.py): size, special ids, and the ids of SAR
 * captions, a learned-token spelling, accents and a prompt truncated at 77 tokens.
 */

interface TokenizerGolden {
  size: number
  bos: number
  eos: number
  pad: number
  maxLength: number
  prompts: Array<{ text: string; ids: Array<number> }>
}
const goldens = JSON.parse(await readFile("test/fixtures/sdxl/goldens.json", "utf8")) as { tokens: Record<string, TokenizerGolden> }

describe("SDXL's tokenizers, offline", () => {
  for (const folder of ["tokenizer", "tokenizer_2"]) {
    it.effect(`${folder}: 49,408 ids, SDXL's special tokens, and the ids transformers gives`, () =>
      Effect.gen(function*() {
        const golden = goldens.tokens[folder]!
        const tokenizer = yield* loadClipTokenizer(`experiments/architectures/sdxl/${folder}`)
        expect(golden.size).toBe(49408)
        expect({ size: tokenizer.size, bos: tokenizer.bosId, eos: tokenizer.eosId, pad: tokenizer.padId, maxLength: tokenizer.maxLength })
          .toEqual({ size: golden.size, bos: golden.bos, eos: golden.eos, pad: golden.pad, maxLength: golden.maxLength })
        for (const prompt of golden.prompts) expect([...tokenizer.encode(prompt.text)], prompt.text).toEqual(prompt.ids)
      }))
  }

  it("pads the way the real SDXL tokenizers do: <|endoftext|> for the first, \"!\" (id 0) for the second", () => {
    expect(goldens.tokens.tokenizer!.pad).toBe(49407)
    expect(goldens.tokens.tokenizer_2!.pad).toBe(0)
    expect(goldens.tokens.tokenizer!.prompts[0]!.ids.slice(0, 8)).toEqual([49406, 320, 1125, 539, 320, 2368, 49407, 49407])
  })
})
