import { bpe, byteSymbols, mergeRanks, type MergeRanks } from "./byte-level-bpe.ts"

/**
 * The CLIP tokenizer as the reference (transformers' CLIPTokenizer on the `tokenizers` backend) runs it:
 *   1. added tokens that are not normalised (the special tokens) are cut out of the raw text;
 *   2. each remaining piece is normalised: NFC, every whitespace run -> one space, lower case;
 *   3. normalised added tokens (e.g. a learned `<SAR>`) are cut out of the normalised pieces;
 *   4. the rest is split into words by CLIP's pattern, then by GPT-2's (ByteLevel) pattern;
 *   5. each word goes through byte-level BPE with `</w>` word ends;
 *   6. `<|startoftext|>` ids `<|endoftext|>`, truncated and padded to the model length (77).
 */

/** A token kept whole, as `tokenizer.add_tokens` / `added_tokens_decoder` define it. */
export interface AddedToken {
  readonly id: number
  readonly content: string
  /** Matched in the normalised text (the default for non-special tokens) rather than the raw text. */
  readonly normalized: boolean
  readonly special: boolean
}

export interface ClipTokenizerSpec {
  readonly vocab: ReadonlyMap<string, number>
  readonly merges: ReadonlyArray<readonly [string, string]>
  readonly addedTokens: ReadonlyArray<AddedToken>
  readonly bosToken: string
  readonly eosToken: string
  readonly padToken: string
  readonly unkToken: string
  readonly modelMaxLength: number
}

export interface ClipTokenizer {
  readonly spec: ClipTokenizerSpec
  /** Number of ids: the vocabulary plus added tokens outside it (`len(tokenizer)`). */
  readonly size: number
  readonly bosId: number
  readonly eosId: number
  readonly padId: number
  /** Sequence length of `encode` (the text model's context, 77 for CLIP). */
  readonly maxLength: number
  /** The ids of the text without start/end tokens or padding. */
  readonly tokenIds: (text: string) => Array<number>
  /** `tokenizer(text, padding="max_length", max_length=maxLength, truncation=True).input_ids`. */
  readonly encode: (text: string) => Int32Array
  /** `encode` for each text, as one [texts.length, maxLength] row-major array. */
  readonly encodeBatch: (texts: ReadonlyArray<string>) => Int32Array
  /** The id of a token (vocabulary entry or added token), if it has one. */
  readonly idOf: (token: string) => number | undefined
  /**
   * A tokenizer that also keeps `tokens` whole, with new ids after the last one, as
   * `tokenizer.add_tokens(tokens)` does (tokens that already have an id are left as they are).
   */
  readonly addTokens: (tokens: ReadonlyArray<string>) => ClipTokenizer
}

const WHITESPACE_RUN = /\p{White_Space}+/gu
/** CLIP's word pattern; `\s` in the reference's regex engine is Unicode White_Space. */
const CLIP_WORDS = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\p{White_Space}\p{L}\p{N}]+/gu
/** GPT-2's pattern, which the ByteLevel pre-tokenizer applies again to each CLIP word. */
const GPT2_WORDS = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu

/** NFC, whitespace runs to one space, then lower case code point by code point (no final-sigma rule, as the reference). */
export const normalizeText = (text: string): string => Array.from(text.normalize("NFC").replace(WHITESPACE_RUN, " "), (c) => c.toLowerCase()).join("")

/** The words BPE runs on, from normalised text (CLIP's pattern, then GPT-2's). */
export const words = (text: string): Array<string> => (text.match(CLIP_WORDS) ?? []).flatMap((word) => word.match(GPT2_WORDS) ?? [])

type Piece = { readonly text: string } | { readonly id: number }

/** Cuts every leftmost-longest occurrence of `patterns` out of the text pieces. */
const splitOn = (pieces: ReadonlyArray<Piece>, patterns: ReadonlyArray<{ readonly text: string; readonly id: number }>): Array<Piece> => {
  if (patterns.length === 0) return pieces.slice()
  const out: Array<Piece> = []
  for (const piece of pieces) {
    if (!("text" in piece)) {
      out.push(piece)
      continue
    }
    const text = piece.text
    let start = 0
    let i = 0
    while (i < text.length) {
      let match: { readonly text: string; readonly id: number } | undefined
      for (const p of patterns) {
        if (p.text.length > 0 && text.startsWith(p.text, i) && (match === undefined || p.text.length > match.text.length)) match = p
      }
      if (match === undefined) {
        i++
        continue
      }
      if (i > start) out.push({ text: text.slice(start, i) })
      out.push({ id: match.id })
      i += match.text.length
      start = i
    }
    if (start < text.length) out.push({ text: text.slice(start) })
  }
  return out
}

export const makeClipTokenizer = (spec: ClipTokenizerSpec): ClipTokenizer => {
  const ranks: MergeRanks = mergeRanks(spec.merges)
  const added = new Map(spec.addedTokens.map((t) => [t.content, t.id]))
  const idOf = (token: string) => added.get(token) ?? spec.vocab.get(token)
  const required = (token: string, role: string) => {
    const id = idOf(token)
    if (id === undefined) throw new Error(`the ${role} token ${JSON.stringify(token)} is not in the vocabulary`)
    return id
  }
  const bosId = required(spec.bosToken, "start")
  const eosId = required(spec.eosToken, "end")
  const padId = required(spec.padToken, "padding")
  const unkId = required(spec.unkToken, "unknown")
  // The special tokens are always kept whole in the raw text, whether or not the files list them as added tokens.
  const specials = [
    { text: spec.bosToken, id: bosId },
    { text: spec.eosToken, id: eosId },
    { text: spec.padToken, id: padId },
    { text: spec.unkToken, id: unkId }
  ]
  const raw = [...spec.addedTokens.filter((t) => !t.normalized).map((t) => ({ text: t.content, id: t.id })), ...specials]
  const normalized = spec.addedTokens.filter((t) => t.normalized).map((t) => ({ text: normalizeText(t.content), id: t.id }))
  const ids = [...spec.vocab.values(), ...spec.addedTokens.map((t) => t.id)]
  const size = Math.max(...ids) + 1

  const tokenIds = (text: string): Array<number> => {
    const pieces = splitOn(splitOn([{ text }], raw).map((p) => ("text" in p ? { text: normalizeText(p.text) } : p)), normalized)
    const out: Array<number> = []
    for (const piece of pieces) {
      if (!("text" in piece)) {
        out.push(piece.id)
        continue
      }
      for (const word of words(piece.text)) {
        for (const symbol of bpe(byteSymbols(word), ranks)) out.push(spec.vocab.get(symbol) ?? unkId)
      }
    }
    return out
  }

  const maxLength = spec.modelMaxLength
  const encodeInto = (text: string, target: Int32Array, offset: number) => {
    const content = tokenIds(text).slice(0, maxLength - 2)
    target.fill(padId, offset, offset + maxLength)
    target[offset] = bosId
    target.set(content, offset + 1)
    target[offset + 1 + content.length] = eosId
  }

  return {
    spec,
    size,
    bosId,
    eosId,
    padId,
    maxLength,
    tokenIds,
    idOf,
    encode: (text) => {
      const out = new Int32Array(maxLength)
      encodeInto(text, out, 0)
      return out
    },
    encodeBatch: (texts) => {
      const out = new Int32Array(texts.length * maxLength)
      texts.forEach((text, i) => encodeInto(text, out, i * maxLength))
      return out
    },
    addTokens: (tokens) => {
      const extra: Array<AddedToken> = []
      for (const content of tokens) {
        if (idOf(content) !== undefined || extra.some((t) => t.content === content)) continue
        extra.push({ id: size + extra.length, content, normalized: true, special: false })
      }
      return makeClipTokenizer({ ...spec, addedTokens: [...spec.addedTokens, ...extra] })
    }
  }
}
