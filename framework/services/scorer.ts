import { Context, Schema } from "effect"
import type { Effect, Scope } from "effect"
import type { Embeddings } from "../metrics/embedding-distances.ts"
import type { Raster } from "./image-io.ts"

/**
 * Embedding models for evaluation: anything that embeds images serves FID_CLIP / KID_CLIP / CMMD
 * (framework/metrics/embedding-distances.ts); a CLIP model also embeds texts, and its prompt
 * alignment score is 100 · cosine(image, text) (`clipAlignment`).
 */

/** A model folder or an input the model cannot take; names the file and what is wrong. */
export class ScorerError extends Schema.TaggedError<ScorerError>()("ScorerError", {
  file: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.file}: ${this.reason}`
  }
}

export interface EmbeddingProvider {
  /** Length of every embedding. */
  readonly dim: number
  /**
   * Unit-length embeddings of images whose values lie in [0, 1] (a normalised SAR amplitude, or
   * 8-bit pixels divided by 255); one band is used as grey, three as RGB.
   */
  readonly embedImages: (images: ReadonlyArray<Raster>) => Effect.Effect<Embeddings, ScorerError>
}

export interface ClipScorer extends EmbeddingProvider {
  /** Unit-length embeddings of texts, tokenised with the model's CLIP tokenizer. */
  readonly embedTexts: (texts: ReadonlyArray<string>) => Effect.Effect<Embeddings, ScorerError>
}

/**
 * Loads CLIP models from folders (layout: docs/sar-clip.md). A model holds native resources;
 * they are released when the scope closes.
 */
export class ClipScorers extends Context.Tag("sardine/ClipScorers")<ClipScorers, {
  readonly load: (folder: string) => Effect.Effect<ClipScorer, ScorerError, Scope.Scope>
}>() {}
