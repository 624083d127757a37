import * as tf from "@tensorflow/tfjs-core"
import { Effect, Schema } from "effect"
import { silu } from "./activations.ts"
import { scaledDotProductAttention } from "./attention.ts"
import { convSpecs, linearSpecs, normSpecs, type Layers, type ParameterSpec } from "./layers.ts"
import { decodeConfig, type ModelConfigError, only, PositiveInt, requireThat } from "./model-config.ts"
import { groupNorm } from "./normalization.ts"
import { downsample, downsampleSpecs, upsample, upsampleSpecs } from "./resampling.ts"
import { resnetBlock, resnetSpecs, type ResnetBlock } from "./resnet.ts"

/** diffusers' AutoencoderKL (the Stable Diffusion / SDXL VAE): encoder to a diagonal Gaussian, decoder. */

export const AutoencoderKlConfig = Schema.Struct({
  in_channels: Schema.optionalWith(PositiveInt, { default: () => 3 }),
  out_channels: Schema.optionalWith(PositiveInt, { default: () => 3 }),
  down_block_types: Schema.optionalWith(Schema.Array(only(Schema.Literal("DownEncoderBlock2D"), "DownEncoderBlock2D")), {
    default: () => ["DownEncoderBlock2D"] as const
  }),
  up_block_types: Schema.optionalWith(Schema.Array(only(Schema.Literal("UpDecoderBlock2D"), "UpDecoderBlock2D")), {
    default: () => ["UpDecoderBlock2D"] as const
  }),
  block_out_channels: Schema.optionalWith(Schema.NonEmptyArray(PositiveInt), { default: () => [64] as const }),
  layers_per_block: Schema.optionalWith(PositiveInt, { default: () => 1 }),
  act_fn: Schema.optionalWith(only(Schema.Literal("silu", "swish"), "silu"), { default: () => "silu" as const }),
  latent_channels: Schema.optionalWith(PositiveInt, { default: () => 4 }),
  norm_num_groups: Schema.optionalWith(PositiveInt, { default: () => 32 }),
  sample_size: Schema.optionalWith(Schema.NullOr(Schema.Union(PositiveInt, Schema.Array(PositiveInt))), { default: () => 32 }),
  /** Latents are multiplied by this before the UNet sees them (0.18215 for SD 1.x/2.x, 0.13025 for SDXL). */
  scaling_factor: Schema.optionalWith(Schema.Number, { default: () => 0.18215 }),
  // SD / SDXL pipelines decode at latents / scaling_factor, never shifting back; a shifted VAE (SD3's) is not theirs.
  shift_factor: Schema.optionalWith(only(Schema.Null, "null (latents shifted for training are not shifted back when decoding)"), { default: () => null }),
  // SDXL pipelines standardise latents with these when set (Playground v2.5's VAE); sardine does not.
  latents_mean: Schema.optionalWith(only(Schema.Null, "null (the tfjs engine has no per-channel latent standardisation)"), { default: () => null }),
  latents_std: Schema.optionalWith(only(Schema.Null, "null (the tfjs engine has no per-channel latent standardisation)"), { default: () => null }),
  // Read by pipelines only to decode an fp16 VAE in fp32; sardine's VAE computes in fp32 (or bf16 on torch) anyway.
  force_upcast: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  use_quant_conv: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  use_post_quant_conv: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  mid_block_add_attention: Schema.optionalWith(Schema.Boolean, { default: () => true })
})
export type AutoencoderKlConfig = typeof AutoencoderKlConfig.Type

/** The encoder and decoder fix these (diffusers' Encoder / Decoder pass resnet_eps=1e-6). */
const EPS = 1e-6

interface CoderBlock {
  readonly module: string
  readonly resnets: ReadonlyArray<ResnetBlock>
  readonly resample: boolean
}

export interface AutoencoderKlPlan {
  readonly config: AutoencoderKlConfig
  readonly encoderBlocks: ReadonlyArray<CoderBlock>
  readonly decoderBlocks: ReadonlyArray<CoderBlock>
}

const resnet = (c: AutoencoderKlConfig, inChannels: number, outChannels: number): ResnetBlock => ({
  inChannels,
  outChannels,
  tembChannels: undefined,
  groups: c.norm_num_groups,
  groupsOut: c.norm_num_groups,
  eps: EPS,
  outputScaleFactor: 1
})

export const planAutoencoderKl = (config: AutoencoderKlConfig, file: string): Effect.Effect<AutoencoderKlPlan, ModelConfigError> =>
  Effect.gen(function*() {
    const c = config
    const n = c.block_out_channels.length
    yield* requireThat(
      c.down_block_types.length === n && c.up_block_types.length === n,
      file,
      `down_block_types and up_block_types must have one entry per block_out_channels entry (${n})`
    )
    for (const ch of c.block_out_channels) {
      yield* requireThat(ch % c.norm_num_groups === 0, file, `norm_num_groups ${c.norm_num_groups} must divide block_out_channels ${ch}`)
    }
    const channels = c.block_out_channels
    const encoderBlocks = channels.map((out, i) => ({
      module: `encoder.down_blocks.${i}`,
      resnets: Array.from({ length: c.layers_per_block }, (_, j) => resnet(c, j === 0 ? channels[Math.max(i - 1, 0)]! : out, out)),
      resample: i < n - 1
    }))
    const reversed = channels.slice().reverse()
    const decoderBlocks = reversed.map((out, i) => ({
      module: `decoder.up_blocks.${i}`,
      resnets: Array.from({ length: c.layers_per_block + 1 }, (_, j) => resnet(c, j === 0 ? reversed[Math.max(i - 1, 0)]! : out, out)),
      resample: i < n - 1
    }))
    return { config, encoderBlocks, decoderBlocks }
  })

export const decodeAutoencoderKlConfig = (json: unknown, file: string) =>
  decodeConfig(AutoencoderKlConfig, json, file).pipe(Effect.flatMap((config) => planAutoencoderKl(config, file)))

const midSpecs = (module: string, c: AutoencoderKlConfig, channels: number): Array<ParameterSpec> => [
  ...resnetSpecs(`${module}.resnets.0`, resnet(c, channels, channels)),
  ...(c.mid_block_add_attention
    ? [
      ...normSpecs(`${module}.attentions.0.group_norm`, channels),
      ...["to_q", "to_k", "to_v", "to_out.0"].flatMap((p) => linearSpecs(`${module}.attentions.0.${p}`, channels, channels))
    ]
    : []),
  ...resnetSpecs(`${module}.resnets.1`, resnet(c, channels, channels))
]

export const autoencoderKlSpecs = (plan: AutoencoderKlPlan): Array<ParameterSpec> => {
  const c = plan.config
  const first = c.block_out_channels[0]
  const last = c.block_out_channels[c.block_out_channels.length - 1]!
  const blockSpecs = (b: CoderBlock, kind: "downsamplers" | "upsamplers") => [
    ...b.resnets.flatMap((r, j) => resnetSpecs(`${b.module}.resnets.${j}`, r)),
    ...(b.resample
      ? kind === "downsamplers"
        ? downsampleSpecs(`${b.module}.downsamplers.0`, b.resnets[0]!.outChannels)
        : upsampleSpecs(`${b.module}.upsamplers.0`, b.resnets[0]!.outChannels)
      : [])
  ]
  return [
    ...convSpecs("encoder.conv_in", c.in_channels, first, 3),
    ...plan.encoderBlocks.flatMap((b) => blockSpecs(b, "downsamplers")),
    ...midSpecs("encoder.mid_block", c, last),
    ...normSpecs("encoder.conv_norm_out", last),
    ...convSpecs("encoder.conv_out", last, 2 * c.latent_channels, 3),
    ...(c.use_quant_conv ? convSpecs("quant_conv", 2 * c.latent_channels, 2 * c.latent_channels, 1) : []),
    ...(c.use_post_quant_conv ? convSpecs("post_quant_conv", c.latent_channels, c.latent_channels, 1) : []),
    ...convSpecs("decoder.conv_in", c.latent_channels, last, 3),
    ...midSpecs("decoder.mid_block", c, last),
    ...plan.decoderBlocks.flatMap((b) => blockSpecs(b, "upsamplers")),
    ...normSpecs("decoder.conv_norm_out", first),
    ...convSpecs("decoder.conv_out", first, c.out_channels, 3)
  ]
}

/**
 * Checkpoints saved before diffusers 0.14 name the mid-block attention `query`, `key`, `value`,
 * `proj_attn`; diffusers renames them on load, and so do we.
 */
export const renameLegacyVaeTensor = (name: string): string =>
  name.replace(
    /(mid_block\.attentions\.0)\.(query|key|value|proj_attn)\./,
    (_, path: string, old: string) => `${path}.${{ query: "to_q", key: "to_k", value: "to_v", proj_attn: "to_out.0" }[old as "query"]}.`
  )

/** UNetMidBlock2D of the VAE: resnet, single-head self-attention over all positions (residual), resnet. */
const midBlock = (layers: Layers, module: string, c: AutoencoderKlConfig, x: tf.Tensor4D): tf.Tensor4D => {
  const [batch, height, width, channels] = x.shape
  const block = resnet(c, channels, channels)
  let h = resnetBlock(layers, `${module}.resnets.0`, block, x, undefined)
  if (c.mid_block_add_attention) {
    const attn = `${module}.attentions.0`
    const tokens = tf.reshape(groupNorm(layers, `${attn}.group_norm`, h, c.norm_num_groups, EPS), [batch, height * width, channels]) as tf.Tensor3D
    const q = layers.linear(`${attn}.to_q`, tokens) as tf.Tensor3D
    const k = layers.linear(`${attn}.to_k`, tokens) as tf.Tensor3D
    const v = layers.linear(`${attn}.to_v`, tokens) as tf.Tensor3D
    const out = layers.linear(`${attn}.to_out.0`, scaledDotProductAttention(q, k, v, 1))
    h = tf.add(tf.reshape(out, h.shape), h)
  }
  return resnetBlock(layers, `${module}.resnets.1`, block, h, undefined)
}

/** The latent distribution of an image batch (NHWC, values in [-1, 1]): mean and clamped log-variance. */
export interface LatentDistribution {
  readonly mean: tf.Tensor4D
  readonly logvar: tf.Tensor4D
}

/** `vae.encode(image).latent_dist`: mean and log-variance (clamped to [-30, 20] as diffusers does). */
export const autoencoderKlEncode = (plan: AutoencoderKlPlan, layers: Layers, image: tf.Tensor4D): LatentDistribution =>
  tf.tidy(() => {
    const c = plan.config
    let h = layers.conv2d("encoder.conv_in", image, { padding: 1 })
    for (const block of plan.encoderBlocks) {
      block.resnets.forEach((r, j) => (h = resnetBlock(layers, `${block.module}.resnets.${j}`, r, h, undefined)))
      if (block.resample) h = downsample(layers, `${block.module}.downsamplers.0`, h, 0)
    }
    h = midBlock(layers, "encoder.mid_block", c, h)
    h = layers.conv2d("encoder.conv_out", silu(groupNorm(layers, "encoder.conv_norm_out", h, c.norm_num_groups, EPS)), { padding: 1 })
    if (c.use_quant_conv) h = layers.conv2d("quant_conv", h, { padding: 0 })
    const [mean, logvar] = tf.split(h, 2, -1) as [tf.Tensor4D, tf.Tensor4D]
    return { mean, logvar: tf.clipByValue(logvar, -30, 20) }
  })

/** `vae.decode(latents).sample`: NHWC image (about [-1, 1]) from unscaled latents. */
export const autoencoderKlDecode = (plan: AutoencoderKlPlan, layers: Layers, latents: tf.Tensor4D): tf.Tensor4D =>
  tf.tidy(() => {
    const c = plan.config
    const z = c.use_post_quant_conv ? layers.conv2d("post_quant_conv", latents, { padding: 0 }) : latents
    let h = midBlock(layers, "decoder.mid_block", c, layers.conv2d("decoder.conv_in", z, { padding: 1 }))
    for (const block of plan.decoderBlocks) {
      block.resnets.forEach((r, j) => (h = resnetBlock(layers, `${block.module}.resnets.${j}`, r, h, undefined)))
      if (block.resample) h = upsample(layers, `${block.module}.upsamplers.0`, h)
    }
    return layers.conv2d("decoder.conv_out", silu(groupNorm(layers, "decoder.conv_norm_out", h, c.norm_num_groups, EPS)), { padding: 1 })
  })

/** `latent_dist.sample()`: mean + exp(logvar / 2) · N(0, 1), the noise drawn from `seed`. */
export const sampleLatents = (distribution: LatentDistribution, seed: number): tf.Tensor4D =>
  tf.tidy(() => {
    const noise = tf.randomNormal(distribution.mean.shape, 0, 1, "float32", seed)
    return tf.add(distribution.mean, tf.mul(tf.exp(tf.mul(distribution.logvar, 0.5)), noise))
  })
