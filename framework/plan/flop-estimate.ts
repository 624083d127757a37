import type { ParameterInfo } from "../declaration/partition.ts"
import { blockLevels, type LatentSize, pixelsAt } from "./activation-estimate.ts"

/**
 * The FLOPs of one forward pass of one sample, read from a model's parameter listing as activation-estimate.ts
 * reads it: every Linear and Conv2d weight applied at the positions its place in the model gives it, and the
 * attention products, 2 FLOPs per multiply-add:
 *
 *   Conv2d / Linear   2 · (out · in · kernel) per output position: a UNet block's pixels at its level (a
 *                     down-sampler's output one level down, an up-sampler's at the up-sampled size), the text
 *                     tokens for cross-attention's keys and values and a text encoder's layers, one position a
 *                     sample for the time embeddings (`time_embedding`, `add_embedding`, each resnet's
 *                     `time_emb_proj`) and CLIP's pooled `text_projection`.
 *   attention         4 · N_q · N_k · C (Q·Kᵀ and the weighted sum of V): self-attention over a block's pixels
 *                     (or a CLIP layer's tokens), cross-attention from the pixels to the text tokens.
 *
 * This is what torch.utils.flop_counter.FlopCounterMode counts (tools/make_flop_goldens.py writes its counts,
 * the tests compare); neither counts normalisation, softmax, activations, additions or the embedding lookups,
 * a few percent of a UNet's arithmetic and less of its time on a GPU's matrix units.
 *
 * `checkpointed` is the part that gradient checkpointing recomputes in backward, as diffusers enables it: each
 * ResnetBlock2D and BasicTransformerBlock of a UNet, each whole block of a VAE's encoder and decoder, each
 * layer of a CLIP text encoder.
 */
export interface ForwardFlops {
  readonly total: number
  readonly checkpointed: number
}

const sum = (values: ReadonlyArray<ForwardFlops>): ForwardFlops => ({
  total: values.reduce((a, v) => a + v.total, 0),
  checkpointed: values.reduce((a, v) => a + v.checkpointed, 0)
})

/** 2 · multiply-adds of a weight (Linear [out, in], Conv2d [out, in, kh, kw]) applied at `positions`. */
const weightFlops = (shape: ReadonlyArray<number>, positions: number) => 2 * shape.reduce((a, b) => a * b, 1) * positions

const attentionFlops = (queries: number, keys: number, channels: number) => 4 * queries * keys * channels

/** A UNet-shaped model's forward under `prefix`: the UNet itself (prefix "") or a VAE's encoder or decoder. */
const blockFlops = (
  parameters: ReadonlyArray<ParameterInfo>,
  prefix: string,
  size: LatentSize,
  recomputed: (name: string) => boolean,
  tokens: number,
  /** Level of the weights outside the blocks (conv_in, conv_out, a VAE's quant convs) by their name. */
  outsideLevel: (name: string) => number | undefined
): ForwardFlops => {
  const names = parameters.map((p) => p.name)
  const { depth, downLevel, upLevel } = blockLevels(names, prefix)
  const p = prefix.replaceAll(".", "\\.")
  const inBlock = new RegExp(`^${p}(?:down_blocks\\.(\\d+)|up_blocks\\.(\\d+)|mid_block)\\.(.*)$`)
  const parts = parameters.flatMap((parameter): Array<ForwardFlops> => {
    const { name, shape } = parameter
    if (!name.endsWith(".weight") || (shape.length !== 2 && shape.length !== 4)) return []
    const match = inBlock.exec(name)
    let positions: number
    if (match === null) {
      const perSample = /^(time_embedding|add_embedding)\./.test(name.slice(prefix.length))
      const level = perSample ? undefined : outsideLevel(name)
      if (!perSample && level === undefined) return []
      positions = perSample ? 1 : pixelsAt(size, level!)
    } else {
      const rest = match[3]!
      const level = match[1] !== undefined ? downLevel(Number(match[1])) : match[2] !== undefined ? upLevel(Number(match[2])) : depth
      positions = rest.endsWith("time_emb_proj.weight")
        ? 1
        : /\.attn2\.to_[kv]\.weight$/.test(rest)
        ? tokens
        : rest.startsWith("downsamplers.")
        ? pixelsAt(size, level + 1)
        : rest.startsWith("upsamplers.")
        ? pixelsAt(size, level - 1)
        : pixelsAt(size, level)
      const query = /\.(attn1|attn2)\.to_q\.weight$/.exec(rest) ?? (/^attentions\.\d+\.to_q\.weight$/.test(rest) ? [rest, "attn1"] : null)
      if (query !== null) {
        const pixels = pixelsAt(size, level)
        const attention = attentionFlops(pixels, query[1] === "attn2" ? tokens : pixels, shape[0] ?? 0)
        const flops = weightFlops(shape, positions)
        return [{ total: flops + attention, checkpointed: recomputed(name) ? flops + attention : 0 }]
      }
    }
    const flops = weightFlops(shape, positions)
    return [{ total: flops, checkpointed: recomputed(name) ? flops : 0 }]
  })
  return sum(parts)
}

/** The UNet's forward of one sample at `latent`, attending to `tokens` prompt tokens. */
export const unetFlops = (parameters: ReadonlyArray<ParameterInfo>, latent: LatentSize, tokens: number): ForwardFlops =>
  blockFlops(
    parameters,
    "",
    latent,
    (name) => /\.resnets\.\d+\./.test(name) || /\.transformer_blocks\.\d+\./.test(name),
    tokens,
    (name) => (name === "conv_in.weight" || name === "conv_out.weight" ? 0 : undefined)
  )

/** A VAE's encoder (`image` in, its latents out, quant_conv included) and decoder (post_quant_conv included) on one image. */
export const vaeFlops = (parameters: ReadonlyArray<ParameterInfo>, image: LatentSize): { readonly encoder: ForwardFlops; readonly decoder: ForwardFlops } => {
  const depth = blockLevels(parameters.map((p) => p.name), "encoder.").depth
  const inBlocks = (half: string) => (name: string) => new RegExp(`^${half}\\.(down_blocks|up_blocks|mid_block)\\.`).test(name)
  const half = (prefix: "encoder" | "decoder", outside: Record<string, number>) =>
    blockFlops(
      parameters.filter((p) => p.name.startsWith(`${prefix}.`) || p.name in outside),
      `${prefix}.`,
      image,
      inBlocks(prefix),
      0,
      (name) => outside[name]
    )
  return {
    encoder: half("encoder", { "encoder.conv_in.weight": 0, "encoder.conv_out.weight": depth, "quant_conv.weight": depth }),
    decoder: half("decoder", { "post_quant_conv.weight": depth, "decoder.conv_in.weight": depth, "decoder.conv_out.weight": 0 })
  }
}

const LAYER_WEIGHT = /^.*encoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|mlp\.fc1|mlp\.fc2)\.weight$/

/** A CLIP text encoder's forward on one prompt of `tokens` tokens (its pooled projection on one). */
export const textEncoderFlops = (parameters: ReadonlyArray<ParameterInfo>, tokens: number): ForwardFlops => {
  const parts = parameters.flatMap((p): Array<ForwardFlops> => {
    const layer = LAYER_WEIGHT.exec(p.name)
    if (layer !== null) {
      const flops = weightFlops(p.shape, tokens) + (layer[2] === "q" ? attentionFlops(tokens, tokens, p.shape[0] ?? 0) : 0)
      return [{ total: flops, checkpointed: flops }]
    }
    return p.name === "text_projection.weight" ? [{ total: weightFlops(p.shape, 1), checkpointed: 0 }] : []
  })
  return sum(parts)
}
