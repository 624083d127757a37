import { BYTE_CHARS, byteSymbols, END_OF_WORD } from "./byte-level-bpe.ts"
import { normalizeText, words } from "./clip-tokenizer.ts"

/**
 * Learns a CLIP byte-level BPE vocabulary from captions, the way CLIP's was made: words as the CLIP
 * tokenizer pre-tokenises them (normalised, CLIP's then GPT-2's pattern), bytes as GPT-2's printable
 * symbols with `</w>` on the last one, then repeatedly the most frequent adjacent pair is merged
 * (ties: the smaller pair, compared left symbol first, by code point). The vocabulary lists the 256
 * byte symbols, the same with `</w>`, each merge's result, then `<|startoftext|>` and `<|endoftext|>`,
 * in CLIP's order, so the files load as any CLIP tokenizer does.
 */

export const START_OF_TEXT = "<|startoftext|>"
export const END_OF_TEXT = "<|endoftext|>"

/** The 512 byte symbols and the 2 special tokens every CLIP vocabulary holds besides its merges. */
export const FIXED_VOCABULARY = 2 * 256 + 2

export interface BpeTrainingOptions {
  /** Ids in the whole vocabulary (bytes, merges, special tokens); training stops there or when no pair is left. */
  readonly vocabSize: number
  /**
   * Words that must come out as one token each: counted as often as there are captions, so their
   * merges rank among the first.
   */
  readonly requiredWords: ReadonlyArray<string>
}

export interface TrainedBpe {
  readonly merges: ReadonlyArray<readonly [string, string]>
  /** Token → id, in CLIP's order. */
  readonly vocab: ReadonlyMap<string, number>
  /** Distinct pre-tokenised words the merges were learned from. */
  readonly words: number
}

/** A vocabulary size too small for the required words; says which word stays split. */
export class VocabularyTooSmall extends Error {}

/** The byte symbols in vocabulary order: GPT-2 lists printable bytes first, which is code point order. */
const byteVocabulary = (): Array<string> => BYTE_CHARS.slice().sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!)

const pairKey = (a: string, b: string) => `${a} ${b}`

/** Is (a, b) smaller than (c, d), left symbol first? Byte symbols are single UTF-16 units plus `</w>`. */
const before = (a: string, b: string, c: string, d: string) => (a !== c ? a < c : b < d)

const mergeInWord = (symbols: ReadonlyArray<string>, left: string, right: string): Array<string> => {
  const out: Array<string> = []
  for (let i = 0; i < symbols.length; i++) {
    if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
      out.push(left + right)
      i++
    } else out.push(symbols[i]!)
  }
  return out
}

const wordsOf = (text: string) => words(normalizeText(text))

export const trainBpe = (captions: ReadonlyArray<string>, options: BpeTrainingOptions): TrainedBpe => {
  if (options.vocabSize < FIXED_VOCABULARY) {
    throw new VocabularyTooSmall(
      `a CLIP vocabulary holds at least ${FIXED_VOCABULARY} ids (256 bytes, 256 word-final bytes, 2 special tokens); got ${options.vocabSize}`
    )
  }
  const counts = new Map<string, number>()
  const add = (word: string, n: number) => counts.set(word, (counts.get(word) ?? 0) + n)
  for (const caption of captions) for (const word of wordsOf(caption)) add(word, 1)
  const required = [...new Set(options.requiredWords.flatMap(wordsOf))]
  for (const word of required) add(word, Math.max(1, captions.length))
  // Sorted so the training never depends on the order captions came in.
  const corpus = [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([word, count]) => ({ symbols: byteSymbols(word), count }))

  const bytes = byteVocabulary()
  const tokens = [...bytes, ...bytes.map((b) => b + END_OF_WORD)]
  const known = new Set(tokens)
  const merges: Array<readonly [string, string]> = []
  while (known.size + 2 < options.vocabSize) {
    const pairs = new Map<string, { left: string; right: string; count: number }>()
    for (const word of corpus) {
      for (let i = 0; i + 1 < word.symbols.length; i++) {
        const left = word.symbols[i]!
        const right = word.symbols[i + 1]!
        const key = pairKey(left, right)
        const pair = pairs.get(key)
        if (pair === undefined) pairs.set(key, { left, right, count: word.count })
        else pair.count += word.count
      }
    }
    let best: { left: string; right: string; count: number } | undefined
    for (const pair of pairs.values()) {
      if (best === undefined || pair.count > best.count || (pair.count === best.count && before(pair.left, pair.right, best.left, best.right))) best = pair
    }
    if (best === undefined) break
    merges.push([best.left, best.right])
    const merged = best.left + best.right
    if (!known.has(merged)) {
      known.add(merged)
      tokens.push(merged)
    }
    for (const word of corpus) word.symbols = mergeInWord(word.symbols, best.left, best.right)
  }
  const split = required.filter((word) => corpus.find((w) => w.symbols.join("") === byteSymbols(word).join(""))!.symbols.length > 1)
  if (split.length > 0) {
    throw new VocabularyTooSmall(
      `a vocabulary of ${options.vocabSize} ids leaves ${split.map((w) => JSON.stringify(w)).join(", ")} split into several tokens; raise the vocabulary size`
    )
  }
  tokens.push(START_OF_TEXT, END_OF_TEXT)
  return { merges, vocab: new Map(tokens.map((t, id) => [t, id])), words: corpus.length }
}

/** merges.txt as CLIP and transformers write it. */
export const mergesText = (merges: ReadonlyArray<readonly [string, string]>): string => `#version: 0.2\n${merges.map(([a, b]) => `${a} ${b}\n`).join("")}`
