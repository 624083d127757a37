import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { silu } from "./activations.ts"
import { initialValues } from "./init/init-model.ts"
import { torchDefaultInitialisation } from "./init/parameter-initialisation.ts"
import { convSpecs, type Layers, type ParameterMap, type ParameterSpec } from "./layers.ts"
import { tfjsTensor } from "./layout.ts"
import { decodeConfig, ModelConfigError, NonNegativeInt, only, PositiveInt } from "./model-config.ts"
import {
  type ControlResiduals,
  defaultNull,
  downBlocks,
  DownBlockType,
  encoderSpecs,
  type EncoderPlan,
  IntOrList,
  LayerCounts,
  midBlock,
  MidBlockType,
  planEncoder,
  type TextTimeConditioning,
  timeConditioning,
  type Unet2DConditionConfig,
  unsupported
} from "./unet2d-condition.ts"

/**
 * diffusers' ControlNetModel: a conditioning image is embedded by a small conv stack to the first
 * feature map, added to a copy of the UNet's conv_in output, run through copies of the UNet's time
 * conditioning, down blocks and mid block, and every skip connection and the mid-block output leave
 * through a 1×1 convolution (zero at initialisation) as residuals for the UNet. Parameters keep
 * diffusers' state-dict names, so a diffusers ControlNet folder loads and sardine's loads in diffusers.
 */

const ONE_COUNT = "diffusers' ControlNetModel takes one count for every block, not a list"
const ONE_WIDTH = "diffusers' ControlNetModel takes one cross_attention_dim, not a list"
const OneCount = PositiveInt.annotations({ message: () => ({ message: ONE_COUNT, override: true }) })
const OneWidth = PositiveInt.annotations({ message: () => ({ message: ONE_WIDTH, override: true }) })

export const ControlNetConfig = Schema.Struct({
  _class_name: Schema.optional(only(Schema.Literal("ControlNetModel"), "ControlNetModel here (a ControlNet folder)")),
  in_channels: Schema.optionalWith(PositiveInt, { default: () => 4 }),
  conditioning_channels: Schema.optionalWith(PositiveInt, { default: () => 3 }),
  flip_sin_to_cos: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  freq_shift: Schema.optionalWith(Schema.Number, { default: () => 0 }),
  down_block_types: Schema.optionalWith(Schema.NonEmptyArray(DownBlockType), {
    default: () => ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"] as const
  }),
  mid_block_type: Schema.optionalWith(MidBlockType, { default: () => "UNetMidBlock2DCrossAttn" as const }),
  only_cross_attention: Schema.optionalWith(only(Schema.Union(Schema.Literal(false), Schema.Array(Schema.Literal(false))), "false"), {
    default: () => false as const
  }),
  block_out_channels: Schema.optionalWith(Schema.NonEmptyArray(PositiveInt), { default: () => [320, 640, 1280, 1280] as const }),
  layers_per_block: Schema.optionalWith(OneCount, { default: () => 2 }),
  downsample_padding: Schema.optionalWith(NonNegativeInt, { default: () => 1 }),
  mid_block_scale_factor: Schema.optionalWith(Schema.Number, { default: () => 1 }),
  act_fn: Schema.optionalWith(only(Schema.Literal("silu", "swish"), "silu"), { default: () => "silu" as const }),
  norm_num_groups: Schema.optionalWith(only(PositiveInt, "a number of groups (the tfjs engine's group norms need one)"), { default: () => 32 }),
  norm_eps: Schema.optionalWith(Schema.Number, { default: () => 1e-5 }),
  cross_attention_dim: Schema.optionalWith(OneWidth, { default: () => 1280 }),
  transformer_layers_per_block: Schema.optionalWith(Schema.Union(PositiveInt, LayerCounts), { default: () => 1 }),
  encoder_hid_dim: unsupported("encoder_hid_dim"),
  encoder_hid_dim_type: unsupported("encoder_hid_dim_type"),
  attention_head_dim: Schema.optionalWith(IntOrList, { default: () => 8 }),
  num_attention_heads: Schema.optionalWith(only(Schema.Null, "null (the heads come from attention_head_dim, as in the UNet)"), { default: () => null }),
  use_linear_projection: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  class_embed_type: unsupported("class_embed_type"),
  addition_embed_type: defaultNull(only(Schema.Literal("text_time"), "null and \"text_time\"")),
  addition_time_embed_dim: defaultNull(PositiveInt),
  num_class_embeds: unsupported("num_class_embeds"),
  // Attention runs in float32 anyway, so upcasting it changes nothing.
  upcast_attention: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  resnet_time_scale_shift: Schema.optionalWith(only(Schema.Literal("default"), "\"default\""), { default: () => "default" as const }),
  projection_class_embeddings_input_dim: defaultNull(PositiveInt),
  controlnet_conditioning_channel_order: Schema.optionalWith(Schema.Literal("rgb", "bgr"), { default: () => "rgb" as const }),
  conditioning_embedding_out_channels: Schema.optionalWith(Schema.NonEmptyArray(PositiveInt), { default: () => [16, 32, 96, 256] as const }),
  global_pool_conditions: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  // Read only by addition_embed_type "text", which is refused.
  addition_embed_type_num_heads: Schema.optionalWith(PositiveInt, { default: () => 64 })
})
export type ControlNetConfig = typeof ControlNetConfig.Type

/** The network a ControlNet config describes. */
export interface ControlNetPlan extends EncoderPlan {
  readonly config: ControlNetConfig
  /** Channels of each 1×1 zero convolution of `controlnet_down_blocks`, one per skip connection of the down blocks. */
  readonly residualChannels: ReadonlyArray<number>
  /** The conditioning image is this many times the latents' height and width (2^(embedding stages − 1)). */
  readonly conditioningScaleFactor: number
}

export const planControlNet = (config: ControlNetConfig, file: string): Effect.Effect<ControlNetPlan, ModelConfigError> =>
  Effect.gen(function*() {
    // A ControlNet's time embedding is always 4 × the first block's width (no time_embedding_dim).
    const encoder = yield* planEncoder(config, config.block_out_channels[0] * 4, file)
    const residualChannels = [
      config.block_out_channels[0],
      ...encoder.down.flatMap((b) => [...b.resnets.map((r) => r.outChannels), ...(b.resample ? [b.resnets[0]!.outChannels] : [])])
    ]
    return { ...encoder, config, residualChannels, conditioningScaleFactor: 2 ** (config.conditioning_embedding_out_channels.length - 1) }
  })

export const decodeControlNetConfig = (json: unknown, file: string) =>
  decodeConfig(ControlNetConfig, json, file).pipe(Effect.flatMap((config) => planControlNet(config, file)))

/** ControlNetConditioningEmbedding: conv_in, then per stage a 3×3 conv and a stride-2 3×3 conv, then conv_out. */
const conditioningEmbeddingSpecs = (c: ControlNetConfig): Array<ParameterSpec> => {
  const widths = c.conditioning_embedding_out_channels
  const module = "controlnet_cond_embedding"
  return [
    ...convSpecs(`${module}.conv_in`, c.conditioning_channels, widths[0], 3),
    ...widths.slice(1).flatMap((out, i) => [
      ...convSpecs(`${module}.blocks.${2 * i}`, widths[i]!, widths[i]!, 3),
      ...convSpecs(`${module}.blocks.${2 * i + 1}`, widths[i]!, out, 3)
    ]),
    ...convSpecs(`${module}.conv_out`, widths[widths.length - 1]!, c.block_out_channels[0], 3)
  ]
}

/** Every parameter of the model with its torch shape, named as in diffusers' state dict. */
export const controlNetSpecs = (plan: ControlNetPlan): Array<ParameterSpec> => {
  const c = plan.config
  const last = c.block_out_channels[c.block_out_channels.length - 1]!
  return [
    ...encoderSpecs(plan, c.in_channels, 3),
    ...conditioningEmbeddingSpecs(c),
    ...plan.residualChannels.flatMap((channels, k) => convSpecs(`controlnet_down_blocks.${k}`, channels, channels, 1)),
    ...convSpecs("controlnet_mid_block", last, last, 1)
  ]
}

/** The parameters from_unet leaves at zero, so a new ControlNet starts by changing nothing. */
const isZeroInitialised = (name: string) =>
  name.startsWith("controlnet_down_blocks.") || name.startsWith("controlnet_mid_block.") || name.startsWith("controlnet_cond_embedding.conv_out.")

/** The parameters from_unet leaves to torch's default initialisation. */
const isDrawn = (name: string) => name.startsWith("controlnet_cond_embedding.") && !isZeroInitialised(name)

export interface FromUnetOptions {
  /** Channels of the conditioning image (3 for RGB; one per class for a one-hot label map). */
  readonly conditioningChannels: number
  /** Widths of the conditioning embedding's stages; the image is 2^(length − 1) × the latents. */
  readonly conditioningEmbeddingOutChannels: ReadonlyArray<number>
}

/** A value of a UNet config that diffusers' `ControlNetModel.from_unet` cannot make a ControlNet of, and why. */
export interface FromUnetObstacle {
  readonly key: string
  readonly reason: string
}

/**
 * What of a UNet config (as read from its JSON: a missing key at diffusers' default) diffusers'
 * `ControlNetModel.from_unet` cannot copy: it builds the ControlNet with one layer count and one
 * cross-attention width for every block (a list fails in its constructor), and loads the UNet's conv_in and
 * time embedding into its own 3×3 conv_in and 4 × block_out_channels[0] embedding. Both engines follow it,
 * so a plan refuses these on either, as the train step would.
 */
export const fromUnetObstacles = (unet: Readonly<Record<string, unknown>>): ReadonlyArray<FromUnetObstacle> => {
  const because = "ControlNetModel.from_unet copies conv_in and time_embedding"
  const widths = Array.isArray(unet.block_out_channels) ? unet.block_out_channels as ReadonlyArray<number> : [320]
  const timeEmbedding = unet.time_embedding_dim ?? null
  return [
    ...(Array.isArray(unet.layers_per_block)
      ? [{ key: "layers_per_block", reason: ONE_COUNT }]
      : []),
    ...(Array.isArray(unet.cross_attention_dim)
      ? [{ key: "cross_attention_dim", reason: ONE_WIDTH }]
      : []),
    ...((unet.conv_in_kernel ?? 3) !== 3 ? [{ key: "conv_in_kernel", reason: `must be 3 for a ControlNet (${because}; its conv_in is 3×3)` }] : []),
    ...(timeEmbedding !== null && timeEmbedding !== widths[0]! * 4
      ? [{ key: "time_embedding_dim", reason: `must be 4 × block_out_channels[0] for a ControlNet (${because})` }]
      : [])
  ]
}

/**
 * The config ControlNetModel.from_unet(unet, conditioning_embedding_out_channels, conditioning_channels) writes:
 * the UNet's fields it copies, the rest at ControlNetModel's defaults. A UNet diffusers cannot make a ControlNet of
 * (layers or cross-attention widths per block, another time-embedding width or conv_in kernel) is refused.
 */
export const controlNetConfigFromUnet = (
  unet: Unet2DConditionConfig,
  unetFile: string,
  options: FromUnetOptions
): Effect.Effect<ControlNetConfig, ModelConfigError> =>
  Effect.gen(function*() {
    const [obstacle] = fromUnetObstacles(unet)
    if (obstacle !== undefined) return yield* new ModelConfigError({ file: `${unetFile} (as a ControlNet)`, reason: `${obstacle.key}: ${obstacle.reason}` })
    const fromUnet = {
      _class_name: "ControlNetModel",
      encoder_hid_dim: unet.encoder_hid_dim,
      encoder_hid_dim_type: unet.encoder_hid_dim_type,
      addition_embed_type: unet.addition_embed_type,
      addition_time_embed_dim: unet.addition_time_embed_dim,
      transformer_layers_per_block: unet.transformer_layers_per_block,
      in_channels: unet.in_channels,
      flip_sin_to_cos: unet.flip_sin_to_cos,
      freq_shift: unet.freq_shift,
      down_block_types: unet.down_block_types,
      only_cross_attention: unet.only_cross_attention,
      block_out_channels: unet.block_out_channels,
      layers_per_block: unet.layers_per_block,
      downsample_padding: unet.downsample_padding,
      mid_block_scale_factor: unet.mid_block_scale_factor,
      act_fn: unet.act_fn,
      norm_num_groups: unet.norm_num_groups,
      norm_eps: unet.norm_eps,
      cross_attention_dim: unet.cross_attention_dim,
      attention_head_dim: unet.attention_head_dim,
      num_attention_heads: unet.num_attention_heads,
      use_linear_projection: unet.use_linear_projection,
      class_embed_type: unet.class_embed_type,
      num_class_embeds: unet.num_class_embeds,
      upcast_attention: unet.upcast_attention,
      resnet_time_scale_shift: unet.resnet_time_scale_shift,
      projection_class_embeddings_input_dim: unet.projection_class_embeddings_input_dim,
      mid_block_type: unet.mid_block_type,
      controlnet_conditioning_channel_order: "rgb",
      conditioning_embedding_out_channels: options.conditioningEmbeddingOutChannels,
      conditioning_channels: options.conditioningChannels
    }
    return yield* decodeConfig(ControlNetConfig, fromUnet, `${unetFile} (as a ControlNet)`)
  })

/** config.json as diffusers writes it for `config`: every field, keys sorted. */
export const controlNetConfigJson = (config: ControlNetConfig): string => {
  const full: Record<string, unknown> = { ...config, _class_name: "ControlNetModel" }
  const sorted = Object.fromEntries(Object.keys(full).sort().map((k) => [k, full[k]]))
  return `${JSON.stringify(sorted, null, 2)}\n`
}

/**
 * ControlNetModel.from_unet's weights: the UNet's conv_in, time (and added) embeddings, down and mid blocks
 * copied, every zero convolution and the embedding's conv_out zero, the embedding's other convolutions drawn
 * as torch draws them by default (seeded: component "controlnet", as init-model.ts draws a new model).
 */
export const controlNetFromUnet = (plan: ControlNetPlan, unet: ReadonlyMap<string, tf.Tensor>, seed: number): ParameterMap => {
  const rules = torchDefaultInitialisation(controlNetSpecs(plan))
  return new Map(
    controlNetSpecs(plan).map((spec) => {
      if (isZeroInitialised(spec.name)) return [spec.name, tfjsTensor(spec, new Float32Array(spec.shape.reduce((a, b) => a * b, 1)))]
      if (isDrawn(spec.name)) return [spec.name, tfjsTensor(spec, initialValues(seed, "controlnet", spec, rules.get(spec.name)!))]
      const copied = unet.get(spec.name)
      if (copied === undefined) throw new Error(`the UNet has no parameter "${spec.name}" for the ControlNet`)
      return [spec.name, tf.clone(copied)]
    })
  )
}

export interface ControlNetInputs {
  /** Noisy latents, NHWC [B, H, W, in_channels]. */
  readonly sample: tf.Tensor4D
  /** One timestep per sample, or one for all. */
  readonly timesteps: ReadonlyArray<number>
  /** Text conditioning [B, tokens, cross_attention_dim]. */
  readonly encoderHiddenStates: tf.Tensor3D
  /** Required when the config's addition_embed_type is "text_time" (SDXL). */
  readonly textTime?: TextTimeConditioning
  /** The conditioning image, NHWC [B, H·f, W·f, conditioning_channels] (f = conditioningScaleFactor), values in [0, 1]. */
  readonly condition: tf.Tensor4D
  /** Multiplies every residual (diffusers' conditioning_scale; default 1). */
  readonly conditioningScale?: number
  /** diffusers' guess_mode: residuals scaled from 0.1 (first skip) to 1 (mid block), log-spaced. */
  readonly guessMode?: boolean
}

/** torch.logspace(-1, 0, count): 10^(−1 + i/(count − 1)). */
const guessModeScales = (count: number) => Array.from({ length: count }, (_, i) => Math.fround(10 ** (-1 + i / (count - 1))))

const conditioningEmbedding = (plan: ControlNetPlan, layers: Layers, condition: tf.Tensor4D): tf.Tensor4D => {
  const module = "controlnet_cond_embedding"
  let h = silu(layers.conv2d(`${module}.conv_in`, condition, { padding: 1 }))
  plan.config.conditioning_embedding_out_channels.slice(1).forEach((_, i) => {
    h = silu(layers.conv2d(`${module}.blocks.${2 * i}`, h, { padding: 1 }))
    h = silu(layers.conv2d(`${module}.blocks.${2 * i + 1}`, h, { padding: 1, stride: 2 }))
  })
  return layers.conv2d(`${module}.conv_out`, h, { padding: 1 })
}

/**
 * The residuals for the UNet — ControlNetModel.forward(...) as (down_block_res_samples, mid_block_res_sample),
 * NHWC. All intermediate tensors are released; only the residuals stay.
 */
export const controlNet = (plan: ControlNetPlan, layers: Layers, inputs: ControlNetInputs): ControlResiduals =>
  tf.tidy(() => {
    const c = plan.config
    const [batch, height, width] = inputs.sample.shape
    const [, condHeight, condWidth, condChannels] = inputs.condition.shape
    const f = plan.conditioningScaleFactor
    if (condHeight !== height * f || condWidth !== width * f || condChannels !== c.conditioning_channels) {
      throw new Error(
        `a conditioning image of ${condHeight}×${condWidth}×${condChannels} for latents of ${height}×${width}: this ControlNet takes ` +
          `${height * f}×${width * f}×${c.conditioning_channels} (${f} × the latents, conditioning_channels ${c.conditioning_channels})`
      )
    }
    const context = inputs.encoderHiddenStates
    const emb = timeConditioning(plan, layers, inputs.timesteps, inputs.textTime, batch)
    const condition = c.controlnet_conditioning_channel_order === "bgr" ? tf.reverse(inputs.condition, -1) : inputs.condition
    const h = tf.add(layers.conv2d("conv_in", inputs.sample, { padding: 1 }), conditioningEmbedding(plan, layers, condition)) as tf.Tensor4D
    const down = downBlocks(plan, layers, h, emb, context)
    const mid = midBlock(plan, layers, down.h, emb, context)
    const residuals = down.skips.map((skip, k) => layers.conv2d(`controlnet_down_blocks.${k}`, skip, { padding: 0 }))
    const midResidual = layers.conv2d("controlnet_mid_block", mid, { padding: 0 })
    const scale = inputs.conditioningScale ?? 1
    const scales = inputs.guessMode === true && !c.global_pool_conditions
      ? guessModeScales(residuals.length + 1).map((s) => s * scale)
      : Array.from({ length: residuals.length + 1 }, () => scale)
    const pool = (x: tf.Tensor4D) => (c.global_pool_conditions ? tf.mean(x, [1, 2], true) as tf.Tensor4D : x)
    const result = {
      down: residuals.map((r, k) => pool(tf.mul(r, scales[k]!))),
      mid: pool(tf.mul(midResidual, scales[scales.length - 1]!))
    }
    return result as unknown as tf.TensorContainer
  }) as unknown as ControlResiduals
