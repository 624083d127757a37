/**
 * Byte-level BPE as CLIP uses it: a word's UTF-8 bytes are mapped to printable characters (the GPT-2
 * table, whose order also fixes the first 256 + 256 ids of a CLIP vocab), the last symbol carries the
 * end-of-word suffix `</w>`, then the lowest-ranked adjacent pair is merged until none is in the merges.
 */

export const END_OF_WORD = "</w>"

/** GPT-2's byte -> character table: printable Latin-1 bytes map to themselves, the rest to U+0100 onwards. */
const byteTable = (): ReadonlyArray<string> => {
  const printable: Array<number> = []
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b)
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b)
  for (let b = 0xae; b <= 0xff; b++) printable.push(b)
  const table = new Array<string>(256)
  for (const b of printable) table[b] = String.fromCodePoint(b)
  let next = 0
  for (let b = 0; b < 256; b++) {
    if (table[b] === undefined) table[b] = String.fromCodePoint(256 + next++)
  }
  return table
}

/** The symbol of each byte (index = byte value). */
export const BYTE_CHARS = byteTable()
const UTF8 = new TextEncoder()

/** The word's UTF-8 bytes as byte-level symbols, with `</w>` appended to the last one. */
export const byteSymbols = (word: string): Array<string> => {
  // The table has a symbol for each of the 256 byte values.
  const symbols = Array.from(UTF8.encode(word), (b) => BYTE_CHARS[b]!)
  const last = symbols.length - 1
  if (last >= 0) symbols[last] += END_OF_WORD
  return symbols
}

/** Merge ranks keyed by "left right" (byte-level symbols never contain a space). */
export type MergeRanks = ReadonlyMap<string, number>

export const mergeRanks = (merges: ReadonlyArray<readonly [string, string]>): MergeRanks => new Map(merges.map(([a, b], rank) => [`${a} ${b}`, rank]))

/**
 * Applies the merges to one word's symbols. Taking the lowest rank first (leftmost on ties) gives the
 * same result as the reference's priority queue, because a merged symbol only takes part in pairs
 * learned after it, which rank lower.
 */
export const bpe = (symbols: Array<string>, ranks: MergeRanks): Array<string> => {
  const word = symbols.slice()
  while (word.length > 1) {
    let best = -1
    let bestRank = Infinity
    for (let i = 0; i < word.length - 1; i++) {
      const rank = ranks.get(`${word[i]} ${word[i + 1]}`)
      if (rank !== undefined && rank < bestRank) {
        bestRank = rank
        best = i
      }
    }
    if (best < 0) break
    word.splice(best, 2, word[best]! + word[best + 1]!)
  }
  return word
}
