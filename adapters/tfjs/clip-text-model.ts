import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { clipEncoderLayer, clipEncoderSpecs } from "./clip-encoder.ts"
import { linearSpecs, normSpecs, tensorSpec, type Layers, type ParameterSpec } from "./layers.ts"
import { decodeConfig, type ModelConfigError, only, PositiveInt, requireThat } from "./model-config.ts"
import { layerNorm } from "./normalization.ts"

/**
 * transformers' CLIPTextModel and CLIPTextModelWithProjection (the text encoders of SD 1.x/2.x and
 * SDXL). Parameters are named as in the published checkpoints (`text_model.…`, `text_projection`).
 */

export const ClipTextConfig = Schema.Struct({
  vocab_size: Schema.optionalWith(PositiveInt, { default: () => 49408 }),
  hidden_size: Schema.optionalWith(PositiveInt, { default: () => 512 }),
  intermediate_size: Schema.optionalWith(PositiveInt, { default: () => 2048 }),
  projection_dim: Schema.optionalWith(PositiveInt, { default: () => 512 }),
  num_hidden_layers: Schema.optionalWith(PositiveInt, { default: () => 12 }),
  num_attention_heads: Schema.optionalWith(PositiveInt, { default: () => 8 }),
  max_position_embeddings: Schema.optionalWith(PositiveInt, { default: () => 77 }),
  hidden_act: Schema.optionalWith(only(Schema.Literal("quick_gelu", "gelu"), "\"quick_gelu\" and \"gelu\""), {
    default: () => "quick_gelu" as const
  }),
  layer_norm_eps: Schema.optionalWith(Schema.Number, { default: () => 1e-5 }),
  // Dropout changes training (transformers applies it in train mode); the published encoders have none.
  attention_dropout: Schema.optionalWith(only(Schema.Literal(0), "0 (the tfjs engine's CLIP text model has no attention dropout)"), {
    default: () => 0 as const
  }),
  // Used only to initialise a model from scratch, which sardine's init-model does with its own (documented) initialisers.
  initializer_range: Schema.optionalWith(Schema.Number, { default: () => 0.02 }),
  initializer_factor: Schema.optionalWith(Schema.Number, { default: () => 1 }),
  // The tokenizer's ids; the model reads only eos_token_id (the pooled position).
  pad_token_id: Schema.optionalWith(Schema.NullOr(Schema.Int), { default: () => 1 }),
  bos_token_id: Schema.optionalWith(Schema.NullOr(Schema.Int), { default: () => 49406 }),
  /** 2 in configs written before transformers#24773: the pooled output is then taken at the largest id. */
  eos_token_id: Schema.optionalWith(Schema.Int, { default: () => 49407 })
})
export type ClipTextConfig = typeof ClipTextConfig.Type

export interface ClipTextPlan {
  readonly config: ClipTextConfig
  /** CLIPTextModelWithProjection (SDXL's second encoder) rather than CLIPTextModel. */
  readonly withProjection: boolean
}

export const decodeClipTextConfig = (json: unknown, file: string, withProjection: boolean): Effect.Effect<ClipTextPlan, ModelConfigError> =>
  decodeConfig(ClipTextConfig, json, file).pipe(
    Effect.tap((c) =>
      requireThat(c.hidden_size % c.num_attention_heads === 0, file, `num_attention_heads ${c.num_attention_heads} must divide hidden_size ${c.hidden_size}`)
    ),
    Effect.map((config) => ({ config, withProjection }))
  )

export const TOKEN_EMBEDDING = "text_model.embeddings.token_embedding.weight"
/**
 * Rows for tokens added after the pretrained vocabulary (a learned `<SAR>`): [added tokens, hidden].
 * Token id `vocab_size + i` reads row i. Kept apart from the pretrained table so they can be trained
 * while the table stays frozen; not a name of the reference state dict.
 */
export const ADDED_TOKEN_EMBEDDING = "text_model.embeddings.added_token_embedding.weight"

export const clipTextSpecs = (plan: ClipTextPlan): Array<ParameterSpec> => {
  const c = plan.config
  const h = c.hidden_size
  return [
    tensorSpec(TOKEN_EMBEDDING, [c.vocab_size, h]),
    tensorSpec("text_model.embeddings.position_embedding.weight", [c.max_position_embeddings, h]),
    ...clipEncoderSpecs("text_model.encoder", c),
    ...normSpecs("text_model.final_layer_norm", h),
    ...(plan.withProjection ? linearSpecs("text_projection", h, c.projection_dim, false) : [])
  ]
}

/**
 * transformers 5 saves a CLIPTextModel's state dict without the `text_model.` prefix that published
 * checkpoints (and the with-projection model) carry; both load, under the published names.
 */
export const canonicalClipTensorName = (name: string): string =>
  name.startsWith("text_model.") || name.startsWith("text_projection.") ? name : `text_model.${name}`

/** transformers ignores the position-id buffer older checkpoints carry (`_keys_to_ignore_on_load_unexpected`). */
export const isIgnoredClipTensor = (name: string): boolean => name.endsWith("position_ids")

export interface ClipTextOutput {
  /** After the final layer norm: [B, T, hidden] (SD 1.x / 2.x conditioning). */
  readonly lastHiddenState: tf.Tensor3D
  /** `hidden_states[-2]`, the input of the last layer, without the final norm (SDXL conditioning). */
  readonly penultimateHiddenState: tf.Tensor3D
  /** `pooler_output`: the final state at the end-of-text token, [B, hidden]. */
  readonly pooledOutput: tf.Tensor2D
  /** `text_embeds` = text_projection(pooled), [B, projection_dim] (with-projection model only). */
  readonly textEmbeds?: tf.Tensor2D
}

/** Adds −∞ (float32's lowest, as transformers) above the diagonal so a token only sees those before it. */
const causalMask = (length: number): tf.Tensor2D => {
  const values = new Float32Array(length * length)
  for (let i = 0; i < length; i++) values.fill(-3.4028234663852886e38, i * length + i + 1, (i + 1) * length)
  return tf.tensor2d(values, [length, length])
}

/** Token embeddings, with ids past the pretrained table read from the added rows. */
const tokenEmbeddings = (layers: Layers, ids: tf.Tensor2D, vocab: number): tf.Tensor3D => {
  const table = layers.parameter(TOKEN_EMBEDDING)
  if (!layers.has(ADDED_TOKEN_EMBEDDING)) return tf.gather(table, ids) as tf.Tensor3D
  const added = layers.parameter(ADDED_TOKEN_EMBEDDING) as tf.Tensor2D
  const inTable = tf.expandDims(tf.cast(tf.less(ids, tf.scalar(vocab, "int32")), "float32"), -1)
  const pretrained = tf.mul(tf.gather(table, tf.minimum(ids, tf.scalar(vocab - 1, "int32"))), inTable)
  // A one-hot product rather than a gather, so the added rows' gradient is a matmul (available on every backend).
  const addedIds = tf.range(vocab, vocab + added.shape[0], 1, "int32")
  const oneHot = tf.cast(tf.equal(tf.reshape(ids, [-1, 1]), addedIds), "float32")
  const extra = tf.matMul(oneHot, added)
  return tf.add(pretrained, tf.reshape(extra, pretrained.shape)) as tf.Tensor3D
}

/** Where `pooler_output` is read in each row: the first end-of-text token, or the largest id for legacy configs. */
const poolingPositions = (rows: ReadonlyArray<Int32Array>, eos: number): Array<number> =>
  rows.map((row) => {
    let best = 0
    for (let i = 0; i < row.length; i++) {
      if (eos === 2 ? row[i]! > row[best]! : row[i] === eos) {
        best = i
        if (eos !== 2) break
      }
    }
    return best
  })

/**
 * The text model on token ids (one Int32Array per text, all the same length, e.g. the tokenizer's 77).
 * Ids at or above the pretrained vocab_size need the ADDED_TOKEN_EMBEDDING rows.
 */
export const clipTextModel = (plan: ClipTextPlan, layers: Layers, inputIds: ReadonlyArray<Int32Array>): ClipTextOutput => {
  const c = plan.config
  const [first] = inputIds
  if (first === undefined) throw new Error("no token id rows")
  const length = first.length
  if (inputIds.some((row) => row.length !== length)) throw new Error("all token id rows must have the same length")
  if (length > c.max_position_embeddings) throw new Error(`${length} tokens exceed max_position_embeddings ${c.max_position_embeddings}`)
  const available = c.vocab_size + (layers.has(ADDED_TOKEN_EMBEDDING) ? layers.parameter(ADDED_TOKEN_EMBEDDING).shape[0] : 0)
  for (const row of inputIds) {
    for (const id of row) {
      if (id < 0 || id >= available) throw new Error(`token id ${id} has no embedding (${c.vocab_size} pretrained + ${available - c.vocab_size} added rows)`)
    }
  }
  const pooling = poolingPositions(inputIds, c.eos_token_id)
  return tf.tidy(() => {
    const batch = inputIds.length
    const h = c.hidden_size
    const ids = tf.tensor2d(Int32Array.from(inputIds.flatMap((row) => Array.from(row))), [batch, length], "int32")
    const positions = tf.slice(layers.parameter("text_model.embeddings.position_embedding.weight"), [0, 0], [length, h])
    let x = tf.add(tokenEmbeddings(layers, ids, c.vocab_size), positions) as tf.Tensor3D
    const mask = causalMask(length)
    // SDXL conditions on the state before the last layer, so the loop keeps it.
    let penultimate = x
    for (let i = 0; i < c.num_hidden_layers; i++) {
      penultimate = x
      x = clipEncoderLayer(layers, `text_model.encoder.layers.${i}`, c, x, mask)
    }
    const last = layerNorm(layers, "text_model.final_layer_norm", x, c.layer_norm_eps)
    const rows = tf.tensor1d(pooling.map((p, b) => b * length + p), "int32")
    const pooledOutput = tf.gather(tf.reshape(last, [batch * length, h]), rows) as tf.Tensor2D
    return {
      lastHiddenState: last,
      penultimateHiddenState: penultimate,
      pooledOutput,
      ...(plan.withProjection ? { textEmbeds: layers.linear("text_projection", pooledOutput) as tf.Tensor2D } : {})
    }
  })
}
