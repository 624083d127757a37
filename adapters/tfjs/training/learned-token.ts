import * as tf from "@tensorflow/tfjs-core"
import { TOKEN_EMBEDDING } from "../clip-text-model.ts"
import type { ClipTokenizer } from "../../tokenizer/clip-tokenizer.ts"

/**
 * A learned token as textual inversion (and diffusers' `load_textual_inversion`) handles it: a token
 * of `vectors` > 1 is spelled `<SAR> <SAR>_1 … <SAR>_{n-1}`, one added tokenizer entry and one added
 * embedding row each, and prompts are rewritten to the spelled-out form before tokenising.
 */

/** The added tokens of a learned token: `<SAR>`, then `<SAR>_1`, … (diffusers' multi-vector naming). */
export const tokenSpellings = (token: string, vectors: number): Array<string> => Array.from({ length: vectors }, (_, i) => (i === 0 ? token : `${token}_${i}`))

/** diffusers' `maybe_convert_prompt`: every occurrence of the token becomes all its spellings. */
export const spellOutToken = (prompt: string, spellings: ReadonlyArray<string>): string =>
  spellings.length <= 1 ? prompt : prompt.split(spellings[0]!).join(spellings.join(" "))

/**
 * The tokenizer with the spellings added. Their ids must follow the encoder's pretrained table
 * (row i of the added rows is id vocab_size + i), so the tokenizer and table must have the same size.
 */
export const tokenizerWithToken = (
  tokenizer: ClipTokenizer,
  spellings: ReadonlyArray<string>,
  vocabSize: number
): ClipTokenizer => {
  const taken = spellings.filter((s) => tokenizer.idOf(s) !== undefined)
  if (taken.length > 0) throw new Error(`the tokenizer already has ${taken.join(", ")}; choose another token`)
  if (tokenizer.size !== vocabSize) {
    throw new Error(`the tokenizer has ${tokenizer.size} ids but the text encoder's table has ${vocabSize} rows`)
  }
  const extended = tokenizer.addTokens(spellings)
  spellings.forEach((s, i) => {
    if (extended.idOf(s) !== vocabSize + i) throw new Error(`${s} got id ${extended.idOf(s)}, expected ${vocabSize + i}`)
  })
  return extended
}

/**
 * Starting rows for the token in one encoder: the embedding of the `init` word (the mean of its
 * tokens' rows when the tokenizer splits it), repeated for every vector. [vectors, hidden].
 */
export const initialTokenRows = (
  parameters: ReadonlyMap<string, tf.Tensor>,
  tokenizer: ClipTokenizer,
  init: string,
  vectors: number
): tf.Tensor2D => {
  const ids = tokenizer.tokenIds(init)
  if (ids.length === 0) throw new Error(`the init word ${JSON.stringify(init)} has no tokens`)
  const table = parameters.get(TOKEN_EMBEDDING)
  if (table === undefined) throw new Error(`no ${TOKEN_EMBEDDING}`)
  return tf.tidy(() => {
    const word = tf.mean(tf.gather(table, tf.tensor1d(ids, "int32")), 0, true)
    return tf.tile(word, [vectors, 1]) as tf.Tensor2D
  })
}

/** Mean L2 norm of the pretrained table's rows: the length re-projection gives the learned rows. */
export const meanRowNorm = (parameters: ReadonlyMap<string, tf.Tensor>): number => {
  const table = parameters.get(TOKEN_EMBEDDING)!
  const norm = tf.tidy(() => tf.mean(tf.norm(table, "euclidean", 1)))
  const value = norm.dataSync()[0]!
  norm.dispose()
  return value
}

/** Rows rescaled to length `norm` each (pivotal-tuning style norm re-projection). */
export const reprojectedRows = (rows: tf.Tensor2D, norm: number): tf.Tensor2D => tf.tidy(() => tf.mul(tf.div(rows, tf.norm(rows, "euclidean", 1, true)), norm))
