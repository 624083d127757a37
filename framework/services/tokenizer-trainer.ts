import { Context, Schema } from "effect"
import type { Effect } from "effect"

/** What a new CLIP tokenizer is learned from and where it goes. */
export interface TokenizerTrainingRequest {
  readonly captions: ReadonlyArray<string>
  /** Ids in the vocabulary: 512 byte symbols, the merges, 2 special tokens. */
  readonly vocabSize: number
  /** Words that must each be one token (class names, the words of the prompts). */
  readonly requiredWords: ReadonlyArray<string>
  /** The sequence length the text encoder takes (`model_max_length`). */
  readonly modelMaxLength: number
  /** The tokenizer folder to create (must not exist). */
  readonly out: string
}

export interface TrainedTokenizer {
  readonly folder: string
  readonly vocabSize: number
  readonly merges: number
  /** Distinct words the merges were learned from. */
  readonly words: number
  readonly captions: number
  /** Tokens of the longest caption, start and end tokens included. */
  readonly longestCaption: number
  /** Captions longer than modelMaxLength (they would be truncated). */
  readonly truncated: number
}

/** A tokenizer that cannot be trained as asked (vocabulary too small, output in the way, …). */
export class TokenizerTrainingError extends Schema.TaggedError<TokenizerTrainingError>()("TokenizerTrainingError", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.path}: ${this.reason}`
  }
}

/** Learns a CLIP byte-level BPE tokenizer (vocab.json + merges.txt) from captions. */
export class TokenizerTrainer extends Context.Tag("sardine/TokenizerTrainer")<TokenizerTrainer, {
  readonly train: (request: TokenizerTrainingRequest) => Effect.Effect<TrainedTokenizer, TokenizerTrainingError>
}>() {}
