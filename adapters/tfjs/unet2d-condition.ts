import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { silu } from "./activations.ts"
import { sinusoidalEmbedding, timestepEmbedding, timestepEmbeddingSpecs } from "./embeddings.ts"
import { convSpecs, normSpecs, type Layers, type ParameterSpec } from "./layers.ts"
import { decodeConfig, type ModelConfigError, NonNegativeInt, only, PositiveInt, requireThat } from "./model-config.ts"
import { groupNorm } from "./normalization.ts"
import { downsample, downsampleSpecs, upsample, upsampleSpecs } from "./resampling.ts"
import { resnetBlock, resnetSpecs, type ResnetBlock } from "./resnet.ts"
import { transformer2d, transformer2dSpecs, type Transformer2D } from "./transformer-2d.ts"

/**
 * diffusers' UNet2DConditionModel, config-driven like the reference, for the configurations of the
 * Stable Diffusion 1.x / 2.x and SDXL families. Parameters keep diffusers' state-dict names.
 */

// Field schemas the ControlNet's config (controlnet.ts) shares.
export const defaultNull = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(Schema.NullOr(schema), { default: () => null })
export const unsupported = (what: string) => Schema.optionalWith(only(Schema.Null, `null (the tfjs engine does not build ${what})`), { default: () => null })

export const IntOrList = Schema.Union(PositiveInt, Schema.Array(PositiveInt))
export const LayerCounts = Schema.Array(Schema.Union(PositiveInt, Schema.Array(PositiveInt)))
export const DownBlockType = only(Schema.Literal("CrossAttnDownBlock2D", "DownBlock2D"), "CrossAttnDownBlock2D and DownBlock2D")
export const MidBlockType = only(Schema.Literal("UNetMidBlock2DCrossAttn"), "UNetMidBlock2DCrossAttn")
const UpBlockType = only(Schema.Literal("CrossAttnUpBlock2D", "UpBlock2D"), "CrossAttnUpBlock2D and UpBlock2D")

export const Unet2DConditionConfig = Schema.Struct({
  in_channels: Schema.optionalWith(PositiveInt, { default: () => 4 }),
  out_channels: Schema.optionalWith(PositiveInt, { default: () => 4 }),
  sample_size: defaultNull(Schema.Union(PositiveInt, Schema.Array(PositiveInt))),
  center_input_sample: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  dropout: Schema.optionalWith(only(Schema.Literal(0), "0 (the tfjs engine's ResNet blocks have no dropout)"), { default: () => 0 as const }),
  resnet_out_scale_factor: Schema.optionalWith(only(Schema.Literal(1), "1 (the tfjs engine's ResNet blocks do not scale their outputs)"), {
    default: () => 1 as const
  }),
  flip_sin_to_cos: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  freq_shift: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  down_block_types: Schema.optionalWith(Schema.NonEmptyArray(DownBlockType), {
    default: () => ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"] as const
  }),
  mid_block_type: Schema.optionalWith(MidBlockType, { default: () => "UNetMidBlock2DCrossAttn" as const }),
  up_block_types: Schema.optionalWith(Schema.NonEmptyArray(UpBlockType), {
    default: () => ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"] as const
  }),
  only_cross_attention: Schema.optionalWith(only(Schema.Union(Schema.Literal(false), Schema.Array(Schema.Literal(false))), "false"), {
    default: () => false as const
  }),
  block_out_channels: Schema.optionalWith(Schema.NonEmptyArray(PositiveInt), { default: () => [320, 640, 1280, 1280] as const }),
  layers_per_block: Schema.optionalWith(IntOrList, { default: () => 2 }),
  downsample_padding: Schema.optionalWith(NonNegativeInt, { default: () => 1 }),
  mid_block_scale_factor: Schema.optionalWith(Schema.Number, { default: () => 1 }),
  act_fn: Schema.optionalWith(only(Schema.Literal("silu", "swish"), "silu"), { default: () => "silu" as const }),
  norm_num_groups: Schema.optionalWith(only(PositiveInt, "a number of groups (the tfjs engine's group norms need one)"), { default: () => 32 }),
  norm_eps: Schema.optionalWith(Schema.Number, { default: () => 1e-5 }),
  cross_attention_dim: Schema.optionalWith(IntOrList, { default: () => 1280 }),
  transformer_layers_per_block: Schema.optionalWith(Schema.Union(PositiveInt, LayerCounts), { default: () => 1 }),
  reverse_transformer_layers_per_block: defaultNull(LayerCounts),
  encoder_hid_dim: unsupported("encoder_hid_dim"),
  encoder_hid_dim_type: unsupported("encoder_hid_dim_type"),
  attention_head_dim: Schema.optionalWith(IntOrList, { default: () => 8 }),
  num_attention_heads: Schema.optionalWith(only(Schema.Null, "null (diffusers itself refuses num_attention_heads)"), { default: () => null }),
  dual_cross_attention: Schema.optionalWith(only(Schema.Literal(false), "false"), { default: () => false as const }),
  use_linear_projection: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  class_embed_type: unsupported("class_embed_type"),
  num_class_embeds: unsupported("num_class_embeds"),
  addition_embed_type: defaultNull(only(Schema.Literal("text_time"), "null and \"text_time\"")),
  addition_time_embed_dim: defaultNull(PositiveInt),
  // Read only by addition_embed_type "text", which is refused above.
  addition_embed_type_num_heads: Schema.optionalWith(PositiveInt, { default: () => 64 }),
  // Attention runs in float32 anyway, so upcasting it changes nothing (SDXL's published config has null).
  upcast_attention: Schema.optionalWith(Schema.NullOr(Schema.Boolean), { default: () => false }),
  resnet_time_scale_shift: Schema.optionalWith(only(Schema.Literal("default"), "\"default\""), { default: () => "default" as const }),
  resnet_skip_time_act: Schema.optionalWith(only(Schema.Literal(false), "false"), { default: () => false as const }),
  time_embedding_type: Schema.optionalWith(only(Schema.Literal("positional"), "\"positional\""), { default: () => "positional" as const }),
  time_embedding_dim: defaultNull(PositiveInt),
  time_embedding_act_fn: unsupported("time_embedding_act_fn"),
  timestep_post_act: unsupported("timestep_post_act"),
  time_cond_proj_dim: unsupported("time_cond_proj_dim"),
  conv_in_kernel: Schema.optionalWith(PositiveInt, { default: () => 3 }),
  conv_out_kernel: Schema.optionalWith(PositiveInt, { default: () => 3 }),
  projection_class_embeddings_input_dim: defaultNull(PositiveInt),
  attention_type: Schema.optionalWith(only(Schema.Literal("default"), "\"default\""), { default: () => "default" as const }),
  class_embeddings_concat: Schema.optionalWith(only(Schema.Literal(false), "false"), { default: () => false as const }),
  mid_block_only_cross_attention: defaultNull(only(Schema.Literal(false), "false")),
  cross_attention_norm: unsupported("cross_attention_norm")
})
export type Unet2DConditionConfig = typeof Unet2DConditionConfig.Type

export interface BlockPlan {
  readonly module: string
  readonly resnets: ReadonlyArray<ResnetBlock>
  /** One Transformer2D after each resnet (cross-attention blocks) or none. */
  readonly attentions: ReadonlyArray<Transformer2D>
  readonly resample: boolean
}

/**
 * The config fields the time conditioning, the down blocks and the mid block read: the part of the
 * UNet a ControlNet copies (controlnet.ts plans its own config through these).
 */
export type EncoderConfig = Pick<
  Unet2DConditionConfig,
  | "down_block_types"
  | "block_out_channels"
  | "layers_per_block"
  | "attention_head_dim"
  | "cross_attention_dim"
  | "transformer_layers_per_block"
  | "norm_num_groups"
  | "norm_eps"
  | "use_linear_projection"
  | "mid_block_scale_factor"
  | "downsample_padding"
  | "flip_sin_to_cos"
  | "freq_shift"
  | "addition_embed_type"
  | "addition_time_embed_dim"
  | "projection_class_embeddings_input_dim"
>

/** Time conditioning, down blocks and mid block, with their channel counts. */
export interface EncoderPlan {
  readonly config: EncoderConfig
  readonly timeEmbedDim: number
  readonly down: ReadonlyArray<BlockPlan>
  readonly mid: BlockPlan
}

/** The network a config describes: every block with its channel counts, computed once. */
export interface Unet2DConditionPlan extends EncoderPlan {
  readonly config: Unet2DConditionConfig
  readonly up: ReadonlyArray<BlockPlan>
}

const perBlock = <T>(value: T | ReadonlyArray<T>, count: number): ReadonlyArray<T> =>
  Array.isArray(value) ? value : Array.from({ length: count }, () => value as T)

/** A block's list of per-layer transformer depths must give one for each of its layers (diffusers reads them so). */
const depthsCover = (field: string, depths: ReadonlyArray<number | ReadonlyArray<number>>, layers: ReadonlyArray<number>, file: string) =>
  Effect.forEach(depths, (entry, i) => {
    const count = layers[i] ?? 0
    return requireThat(typeof entry === "number" || entry.length >= count, file, `${field}[${i}] must give a depth for each of the block's ${count} layers`)
  }, { discard: true })

/** Transformer depth of layer `j` from a per-block entry that is one count or a count per layer. */
const depthAt = (entry: number | ReadonlyArray<number>, j: number) => (typeof entry === "number" ? entry : entry[j]!)

const resnetOf = (c: EncoderConfig, timeEmbedDim: number) => (inChannels: number, outChannels: number, outputScaleFactor = 1): ResnetBlock => ({
  inChannels,
  outChannels,
  tembChannels: timeEmbedDim,
  groups: c.norm_num_groups,
  groupsOut: c.norm_num_groups,
  eps: c.norm_eps,
  outputScaleFactor
})

const transformerOf = (c: EncoderConfig) => (ch: number, h: number, depth: number, contextDim: number): Transformer2D => ({
  channels: ch,
  heads: h,
  headDim: ch / h,
  depth,
  contextDim,
  groups: c.norm_num_groups,
  linearProjection: c.use_linear_projection
})

const checkBlocks = (blocks: ReadonlyArray<BlockPlan>, groups: number, file: string): Effect.Effect<void, ModelConfigError> =>
  Effect.forEach(blocks, (block) =>
    Effect.gen(function*() {
      for (const r of block.resnets) {
        yield* requireThat(
          r.inChannels % groups === 0 && r.outChannels % groups === 0,
          file,
          `norm_num_groups ${groups} must divide the ${r.inChannels} and ${r.outChannels} channels of ${block.module}`
        )
      }
      for (const t of block.attentions) {
        yield* requireThat(
          Number.isInteger(t.headDim),
          file,
          `attention_head_dim (the number of heads, ${t.heads}) must divide the ${t.channels} channels of ${block.module}`
        )
      }
    }), { discard: true })

/** Plans the time conditioning, down and mid blocks, making the checks diffusers makes for them. */
export const planEncoder = (c: EncoderConfig, timeEmbedDim: number, file: string): Effect.Effect<EncoderPlan, ModelConfigError> =>
  Effect.gen(function*() {
    const n = c.down_block_types.length
    const lengthOf = (field: string, value: unknown) =>
      requireThat(!Array.isArray(value) || value.length === n, file, `${field} must have one entry per down block (${n})`)
    yield* requireThat(c.block_out_channels.length === n, file, `block_out_channels must have one entry per down block (${n})`)
    yield* lengthOf("layers_per_block", c.layers_per_block)
    yield* lengthOf("attention_head_dim", c.attention_head_dim)
    yield* lengthOf("cross_attention_dim", c.cross_attention_dim)
    yield* lengthOf("transformer_layers_per_block", c.transformer_layers_per_block)
    if (c.addition_embed_type === "text_time") {
      yield* requireThat(
        c.addition_time_embed_dim !== null && c.projection_class_embeddings_input_dim !== null,
        file,
        "addition_embed_type \"text_time\" needs addition_time_embed_dim and projection_class_embeddings_input_dim"
      )
    }
    const channels = c.block_out_channels
    const layers = perBlock(c.layers_per_block, n)
    const heads = perBlock(c.attention_head_dim, n)
    const cross = perBlock(c.cross_attention_dim, n)
    const depths = perBlock<number | ReadonlyArray<number>>(c.transformer_layers_per_block, n)
    yield* depthsCover("transformer_layers_per_block", depths, layers, file)
    const resnet = resnetOf(c, timeEmbedDim)
    const transformer = transformerOf(c)
    // Every per-block list has n ≥ 1 entries (checked above), so indexing them by block is safe.
    const down: Array<BlockPlan> = c.down_block_types.map((type, i) => {
      const out = channels[i]!
      const resnets = Array.from({ length: layers[i]! }, (_, j) => resnet(j === 0 ? channels[Math.max(i - 1, 0)]! : out, out))
      const attentions = type === "CrossAttnDownBlock2D"
        ? resnets.map((_, j) => transformer(out, heads[i]!, depthAt(depths[i]!, j), cross[i]!))
        : []
      return { module: `down_blocks.${i}`, resnets, attentions, resample: i < n - 1 }
    })
    const last = channels[n - 1]!
    const mid: BlockPlan = {
      module: "mid_block",
      resnets: [resnet(last, last, c.mid_block_scale_factor), resnet(last, last, c.mid_block_scale_factor)],
      attentions: [transformer(last, heads[n - 1]!, depthAt(depths[n - 1]!, 0), cross[n - 1]!)],
      resample: false
    }
    yield* checkBlocks([...down, mid], c.norm_num_groups, file)
    return { config: c, timeEmbedDim, down, mid }
  })

/** Builds the plan and makes the checks diffusers makes while constructing the model. */
export const planUnet2DCondition = (config: Unet2DConditionConfig, file: string): Effect.Effect<Unet2DConditionPlan, ModelConfigError> =>
  Effect.gen(function*() {
    const c = config
    const n = c.down_block_types.length
    yield* requireThat(c.up_block_types.length === n, file, `up_block_types must have as many entries as down_block_types (${n})`)
    const nested = Array.isArray(c.transformer_layers_per_block) && c.transformer_layers_per_block.some(Array.isArray)
    yield* requireThat(
      !nested || c.reverse_transformer_layers_per_block !== null,
      file,
      "reverse_transformer_layers_per_block is required when transformer_layers_per_block lists counts per layer"
    )
    const encoder = yield* planEncoder(c, c.time_embedding_dim ?? c.block_out_channels[0] * 4, file)
    const resnet = resnetOf(c, encoder.timeEmbedDim)
    const transformer = transformerOf(c)
    const reversed = <T>(xs: ReadonlyArray<T>) => xs.slice().reverse()
    const rChannels = reversed(c.block_out_channels)
    const rLayers = reversed(perBlock(c.layers_per_block, n))
    const rHeads = reversed(perBlock(c.attention_head_dim, n))
    const rCross = reversed(perBlock(c.cross_attention_dim, n))
    const rDepths = c.reverse_transformer_layers_per_block ?? reversed(perBlock<number | ReadonlyArray<number>>(c.transformer_layers_per_block, n))
    yield* requireThat(rDepths.length === n, file, `reverse_transformer_layers_per_block must have one entry per up block (${n})`)
    yield* depthsCover("reverse_transformer_layers_per_block", rDepths, rLayers.map((count) => count + 1), file)
    const up: Array<BlockPlan> = c.up_block_types.map((type, i) => {
      const out = rChannels[i]!
      const previous = rChannels[Math.max(i - 1, 0)]!
      const skipIn = rChannels[Math.min(i + 1, n - 1)]!
      const count = rLayers[i]! + 1
      const resnets = Array.from({ length: count }, (_, j) => resnet((j === 0 ? previous : out) + (j === count - 1 ? skipIn : out), out))
      const attentions = type === "CrossAttnUpBlock2D"
        ? resnets.map((_, j) => transformer(out, rHeads[i]!, depthAt(rDepths[i]!, j), rCross[i]!))
        : []
      return { module: `up_blocks.${i}`, resnets, attentions, resample: i < n - 1 }
    })
    yield* checkBlocks(up, c.norm_num_groups, file)
    return { ...encoder, config, up }
  })

export const decodeUnet2DConditionConfig = (json: unknown, file: string) =>
  decodeConfig(Unet2DConditionConfig, json, file).pipe(Effect.flatMap((config) => planUnet2DCondition(config, file)))

const blockSpecs = (block: BlockPlan, resampler: "downsamplers" | "upsamplers"): Array<ParameterSpec> => [
  ...block.resnets.flatMap((r, j) => resnetSpecs(`${block.module}.resnets.${j}`, r)),
  ...block.attentions.flatMap((t, j) => transformer2dSpecs(`${block.module}.attentions.${j}`, t)),
  ...(block.resample
    ? resampler === "downsamplers"
      ? downsampleSpecs(`${block.module}.downsamplers.0`, block.resnets[0]!.outChannels)
      : upsampleSpecs(`${block.module}.upsamplers.0`, block.resnets[0]!.outChannels)
    : [])
]

/** conv_in, the time embedding (and SDXL's added one), the down blocks and the mid block. */
export const encoderSpecs = (plan: EncoderPlan, inChannels: number, convInKernel: number): Array<ParameterSpec> => {
  const c = plan.config
  const first = c.block_out_channels[0]
  return [
    ...convSpecs("conv_in", inChannels, first, convInKernel),
    ...timestepEmbeddingSpecs("time_embedding", first, plan.timeEmbedDim),
    ...(c.addition_embed_type === "text_time"
      ? timestepEmbeddingSpecs("add_embedding", c.projection_class_embeddings_input_dim!, plan.timeEmbedDim)
      : []),
    ...plan.down.flatMap((b) => blockSpecs(b, "downsamplers")),
    ...blockSpecs(plan.mid, "downsamplers")
  ]
}

/** Every parameter of the model with its torch shape, named as in diffusers' state dict. */
export const unet2dConditionSpecs = (plan: Unet2DConditionPlan): Array<ParameterSpec> => {
  const c = plan.config
  const first = c.block_out_channels[0]
  return [
    ...encoderSpecs(plan, c.in_channels, c.conv_in_kernel),
    ...plan.up.flatMap((b) => blockSpecs(b, "upsamplers")),
    ...normSpecs("conv_norm_out", first),
    ...convSpecs("conv_out", first, c.out_channels, c.conv_out_kernel)
  ]
}

/** SDXL's extra conditioning (`added_cond_kwargs`): pooled text embedding and size/crop ids per sample. */
export interface TextTimeConditioning {
  /** [B, projection_dim] — the pooled projection of the second text encoder. */
  readonly textEmbeds: tf.Tensor2D
  /** One row per sample: [original h, original w, crop top, crop left, target h, target w]. */
  readonly timeIds: ReadonlyArray<ReadonlyArray<number>>
}

/**
 * A ControlNet's output, added by the UNet (`down_block_additional_residuals`, `mid_block_additional_residual`):
 * one residual per skip connection, in the order the down blocks make them, and one for the mid block.
 */
export interface ControlResiduals {
  readonly down: ReadonlyArray<tf.Tensor4D>
  readonly mid: tf.Tensor4D
}

export interface Unet2DConditionInputs {
  /** Noisy latents, NHWC [B, H, W, in_channels]. */
  readonly sample: tf.Tensor4D
  /** One timestep per sample, or one for all. */
  readonly timesteps: ReadonlyArray<number>
  /** Text conditioning [B, tokens, cross_attention_dim]. */
  readonly encoderHiddenStates: tf.Tensor3D
  /** Required when the config's addition_embed_type is "text_time" (SDXL). */
  readonly textTime?: TextTimeConditioning
  /** A ControlNet's residuals for this sample. */
  readonly controlResiduals?: ControlResiduals
}

/** The time embedding [B, timeEmbedDim] of `timesteps` (one per sample, or one for all), plus SDXL's added conditions. */
export const timeConditioning = (
  plan: EncoderPlan,
  layers: Layers,
  timestepList: ReadonlyArray<number>,
  textTime: TextTimeConditioning | undefined,
  batch: number
): tf.Tensor2D => {
  const c = plan.config
  const first = c.block_out_channels[0]
  if (timestepList.length !== 1 && timestepList.length !== batch) {
    throw new Error(`${timestepList.length} timesteps for a batch of ${batch}`)
  }
  const timesteps = timestepList.length === 1 ? Array.from({ length: batch }, () => timestepList[0]!) : timestepList
  const tEmb = tf.tensor2d(sinusoidalEmbedding(timesteps, first, c.flip_sin_to_cos, c.freq_shift), [batch, first])
  const emb = timestepEmbedding(layers, "time_embedding", tEmb)
  if (c.addition_embed_type !== "text_time") return emb
  if (textTime === undefined) throw new Error("this model (addition_embed_type \"text_time\") needs textTime: text embeddings and time ids")
  const { textEmbeds, timeIds } = textTime
  const dim = c.addition_time_embed_dim!
  const idsPerRow = timeIds[0]?.length ?? 0
  const width = textEmbeds.shape[1] + idsPerRow * dim
  const ragged = timeIds.some((row) => row.length !== idsPerRow)
  const idsText = ragged ? "unequal numbers of" : String(idsPerRow)
  if (ragged || timeIds.length !== batch || textEmbeds.shape[0] !== batch || width !== c.projection_class_embeddings_input_dim) {
    throw new Error(
      `text_time conditioning of ${textEmbeds.shape[0]} text embeddings of width ${textEmbeds.shape[1]} and ${timeIds.length} rows of ` +
        `${idsText} time ids does not give ${batch} rows of projection_class_embeddings_input_dim ${c.projection_class_embeddings_input_dim}`
    )
  }
  const timeEmbeds = tf.tensor2d(sinusoidalEmbedding(timeIds.flat(), dim, c.flip_sin_to_cos, c.freq_shift), [batch, idsPerRow * dim])
  return tf.add(emb, timestepEmbedding(layers, "add_embedding", tf.concat([textEmbeds, timeEmbeds], -1)))
}

/** The down blocks on conv_in's features `input`: their output and every skip connection, `input` first. */
export const downBlocks = (
  plan: EncoderPlan,
  layers: Layers,
  input: tf.Tensor4D,
  emb: tf.Tensor2D,
  context: tf.Tensor3D
): { readonly h: tf.Tensor4D; readonly skips: Array<tf.Tensor4D> } => {
  let h = input
  const skips: Array<tf.Tensor4D> = [h]
  for (const block of plan.down) {
    block.resnets.forEach((r, j) => {
      h = resnetBlock(layers, `${block.module}.resnets.${j}`, r, h, emb)
      if (block.attentions.length > 0) h = transformer2d(layers, `${block.module}.attentions.${j}`, block.attentions[j]!, h, context)
      skips.push(h)
    })
    if (block.resample) {
      h = downsample(layers, `${block.module}.downsamplers.0`, h, plan.config.downsample_padding)
      skips.push(h)
    }
  }
  return { h, skips }
}

/** UNetMidBlock2DCrossAttn: resnet, then (attention, resnet) pairs. */
export const midBlock = (plan: EncoderPlan, layers: Layers, input: tf.Tensor4D, emb: tf.Tensor2D, context: tf.Tensor3D): tf.Tensor4D => {
  let h = resnetBlock(layers, "mid_block.resnets.0", plan.mid.resnets[0]!, input, emb)
  plan.mid.attentions.forEach((t, k) => {
    h = transformer2d(layers, `mid_block.attentions.${k}`, t, h, context)
    h = resnetBlock(layers, `mid_block.resnets.${k + 1}`, plan.mid.resnets[k + 1]!, h, emb)
  })
  return h
}

/** Adds a ControlNet's residuals to the skip connections, as UNet2DConditionModel.forward does. */
const withResiduals = (skips: Array<tf.Tensor4D>, residuals: ControlResiduals): Array<tf.Tensor4D> => {
  if (residuals.down.length !== skips.length) {
    throw new Error(`${residuals.down.length} ControlNet down residuals for the UNet's ${skips.length} skip connections`)
  }
  return skips.map((skip, i) => tf.add(skip, residuals.down[i]!))
}

/**
 * The noise prediction for `inputs`, NHWC [B, H, W, out_channels] — UNet2DConditionModel.forward(...).sample.
 * All intermediate tensors are released; only the result stays.
 */
export const unet2dCondition = (plan: Unet2DConditionPlan, layers: Layers, inputs: Unet2DConditionInputs): tf.Tensor4D =>
  tf.tidy(() => {
    const c = plan.config
    const [batch, height, width] = inputs.sample.shape
    const context = inputs.encoderHiddenStates
    const emb = timeConditioning(plan, layers, inputs.timesteps, inputs.textTime, batch)
    const upFactor = 2 ** plan.up.filter((b) => b.resample).length
    // Sizes that do not halve evenly: the up blocks then follow the sizes of the skip connections.
    const followSkipSizes = height % upFactor !== 0 || width % upFactor !== 0
    const sample: tf.Tensor4D = c.center_input_sample ? tf.sub(tf.mul(inputs.sample, 2), 1) : inputs.sample
    const conditioned = layers.conv2d("conv_in", sample, { padding: (c.conv_in_kernel - 1) / 2 })
    const down = downBlocks(plan, layers, conditioned, emb, context)
    const control = inputs.controlResiduals
    const skips = control === undefined ? down.skips : withResiduals(down.skips, control)
    const mid = midBlock(plan, layers, down.h, emb, context)
    let h: tf.Tensor4D = control === undefined ? mid : tf.add(mid, control.mid)
    for (const block of plan.up) {
      const taken = skips.splice(skips.length - block.resnets.length, block.resnets.length)
      block.resnets.forEach((r, j) => {
        h = resnetBlock(layers, `${block.module}.resnets.${j}`, r, tf.concat([h, taken[taken.length - 1 - j]!], -1), emb)
        if (block.attentions.length > 0) h = transformer2d(layers, `${block.module}.attentions.${j}`, block.attentions[j]!, h, context)
      })
      if (block.resample) {
        const next = skips[skips.length - 1]!
        h = upsample(layers, `${block.module}.upsamplers.0`, h, followSkipSizes ? [next.shape[1], next.shape[2]] : undefined)
      }
    }
    const out = silu(groupNorm(layers, "conv_norm_out", h, c.norm_num_groups, c.norm_eps))
    return layers.conv2d("conv_out", out, { padding: (c.conv_out_kernel - 1) / 2 })
  })
