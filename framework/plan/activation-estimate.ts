import type { ParameterInfo } from "../declaration/partition.ts"

/**
 * How many activation values one training sample keeps for the backward pass, read from a model's
 * parameter listing (no weights, no config): the channel widths come from the weight shapes, the spatial
 * level of each UNet block from how many down-samplers precede it. The model, per pixel of the block's
 * level (C_in / C_out: a block's channels; counts are tensors autograd saves, as torch's kernels save them):
 *
 *   ResnetBlock2D     3·C_in + 3·C_out   GroupNorm input, its output (SiLU's input), SiLU's output (conv1's
 *                                        input); the same three after conv1 (+ time embedding)
 *   Transformer2D     3·C + 30·C a block GroupNorm in and out, proj_out's input; per BasicTransformerBlock:
 *                                        self-attention 7·C (LayerNorm in/out, q, k, v, the attention output
 *                                        and its reshaped copy), cross-attention 5·C, GEGLU feed-forward 18·C
 *                                        (LayerNorm in/out, the 8·C projection, GELU's 4·C output, the 4·C product)
 *   Down/Upsample2D   C (the convolution's input, at the upsampled size for an upsampler)
 *   conv_norm_out…    3·C_0 at full latent size
 *
 * Attention is counted as the fused kernels run it (scaled_dot_product_attention's flash or memory-efficient
 * kernels on CUDA, its flash kernel on CPU): O(tokens) saved values, no tokens² attention matrix.
 *
 * With gradient checkpointing as diffusers enables it (each ResnetBlock2D and each BasicTransformerBlock
 * recomputed in backward), a checkpointed unit keeps only its input; the backward pass then holds, at its
 * peak, the full activations of the largest unit it recomputes, counted once on top. With or without,
 * backward also holds the gradients of the unit it is in: the largest unit's saved values once more.
 *
 * A VAE that trains (reconstruction, at the image size) has the same resnets and samplers, and an attention
 * of 7·C (GroupNorm in and out, q, k, v, the output and its reshaped copy) in its middle blocks; diffusers
 * checkpoints its Encoder and Decoder a whole block at a time.
 *
 * A CLIP text encoder that trains runs on its prompt length (77 for CLIP): per layer 7·D (attention as above) + 14·D (LayerNorm
 * in/out, fc1's 4·D output, quick-GELU's saved sigmoid 4·D, fc2's 4·D input) per token; checkpointed per layer.
 */

export interface LatentSize {
  readonly height: number
  readonly width: number
}

/** Saved values per sample, without and with gradient checkpointing. */
export interface ActivationCount {
  readonly plain: number
  readonly checkpointed: number
}

/**
 * One module of the model: the values it saves, what of its input a checkpoint around it keeps (none for a
 * module inside a checkpointed block other than the first), and the checkpointed unit it belongs to (none:
 * never recomputed).
 */
interface Unit {
  readonly saved: number
  readonly input: number
  readonly group?: string
}

export const pixelsAt = (size: LatentSize, level: number) => Math.ceil(size.height / 2 ** level) * Math.ceil(size.width / 2 ** level)

const sum = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0)

/**
 * Without checkpointing every unit's saved values; with it, the units outside checkpoints and each group's
 * input, plus the largest group recomputed. Either way backward holds, at its peak, the gradients of
 * one unit's values besides: counted as the largest unit's saved values once more.
 */
const countOf = (units: ReadonlyArray<Unit>): ActivationCount => {
  const groups = new Map<string, { input: number; saved: number }>()
  for (const u of units) {
    if (u.group === undefined) continue
    const g = groups.get(u.group)
    groups.set(u.group, g === undefined ? { input: u.input, saved: u.saved } : { input: g.input + u.input, saved: g.saved + u.saved })
  }
  const outside = units.filter((u) => u.group === undefined).map((u) => u.saved)
  const grouped = [...groups.values()]
  const largest = Math.max(0, ...outside, ...grouped.map((g) => g.saved))
  const recomputed = Math.max(0, ...grouped.map((g) => g.saved))
  return {
    plain: sum(units.map((u) => u.saved)) + largest,
    checkpointed: sum(outside) + sum(grouped.map((g) => g.input)) + recomputed + largest
  }
}

/** The prompt length a text encoder is padded to (its position embeddings); CLIP's 77 when the listing has none. */
export const promptTokens = (textEncoder: ReadonlyArray<ParameterInfo>): number =>
  textEncoder.find((q) => q.name === "text_model.embeddings.position_embedding.weight")?.shape[0] ?? 77

/**
 * The spatial level (how many halvings) of the down blocks, the middle and the up blocks of a UNet-shaped model
 * under `prefix`, from the samplers its parameter names list.
 */
export const blockLevels = (names: ReadonlyArray<string>, prefix: string) => {
  const p = prefix.replaceAll(".", "\\.")
  const downs = names.flatMap((n) => new RegExp(`^${p}down_blocks\\.(\\d+)\\.downsamplers\\.0\\.conv\\.weight$`).exec(n)?.[1] ?? []).map(Number)
  const ups = names.flatMap((n) => new RegExp(`^${p}up_blocks\\.(\\d+)\\.upsamplers\\.0\\.conv\\.weight$`).exec(n)?.[1] ?? []).map(Number)
  // A VAE's decoder has no down-samplers: its middle sits as deep as its up-samplers climb.
  const depth = Math.max(downs.length, ups.length)
  return {
    depth,
    downLevel: (block: number) => downs.filter((b) => b < block).length,
    upLevel: (block: number) => depth - ups.filter((b) => b < block).length
  }
}

/**
 * The units of a UNet-shaped model under `prefix` (`""` for a UNet; `encoder.` / `decoder.` for a VAE's
 * halves): its down, mid and up blocks at their levels. `checkpointing`: what diffusers recomputes — each
 * ResnetBlock2D and BasicTransformerBlock (the UNet), or each whole block (the VAE's Encoder and Decoder).
 */
const blockUnits = (
  parameters: ReadonlyArray<ParameterInfo>,
  prefix: string,
  size: LatentSize,
  checkpointing: "module" | "block",
  contextTokens = 0
): Array<Unit> => {
  const p = prefix.replaceAll(".", "\\.")
  const module = new RegExp(`^${p}(down_blocks\\.(\\d+)|up_blocks\\.(\\d+)|mid_block)\\.(resnets|attentions)\\.(\\d+)\\.(conv1|proj_in|to_q)\\.weight$`)
  const downsampler = new RegExp(`^${p}down_blocks\\.(\\d+)\\.downsamplers\\.0\\.conv\\.weight$`)
  const upsampler = new RegExp(`^${p}up_blocks\\.(\\d+)\\.upsamplers\\.0\\.conv\\.weight$`)
  const names = parameters.map((q) => q.name)
  const shapes = new Map(parameters.map((q) => [q.name, q.shape]))
  const { depth, downLevel, upLevel } = blockLevels(names, prefix)
  const units: Array<Unit> = []
  for (const name of names) {
    const m = module.exec(name)
    if (m !== null) {
      const block = `${prefix}${m[1]}`
      const level = m[2] !== undefined ? downLevel(Number(m[2])) : m[3] !== undefined ? upLevel(Number(m[3])) : depth
      const pixels = pixelsAt(size, level)
      const [out = 0, into = 0] = shapes.get(name) ?? []
      const group = (unit: string) => (checkpointing === "block" ? block : unit)
      // A whole checkpointed block keeps the input of its first module, resnets.0 (whatever the listing's order).
      const input = (values: number) => (checkpointing === "module" || (m[4] === "resnets" && m[5] === "0") ? values : 0)
      if (m[6] === "conv1") {
        units.push({ saved: (3 * into + 3 * out) * pixels, input: input(into * pixels), group: group(name) })
      } else if (m[6] === "to_q") {
        // An attention without proj_in (the VAE's): GroupNorm in and out, q, k, v, the output and its reshaped copy.
        units.push({ saved: 7 * out * pixels, input: input(out * pixels), ...(checkpointing === "block" ? { group: block } : {}) })
      } else {
        const holder = name.slice(0, -".proj_in.weight".length)
        const blocks = new Set(names.flatMap((n) => new RegExp(`^${holder.replaceAll(".", "\\.")}\\.transformer_blocks\\.(\\d+)\\.`).exec(n)?.[1] ?? []))
        units.push({ saved: 3 * out * pixels, input: input(out * pixels), ...(checkpointing === "block" ? { group: block } : {}) })
        // Cross-attention keys and values over the text tokens, per transformer block.
        for (const b of blocks) units.push({ saved: 30 * out * pixels + 2 * contextTokens * out, input: input(out * pixels), group: group(`${holder}.${b}`) })
      }
      continue
    }
    const down = downsampler.exec(name)
    if (down !== null) {
      units.push({
        saved: (shapes.get(name)?.[1] ?? 0) * pixelsAt(size, downLevel(Number(down[1]))),
        input: 0,
        ...(checkpointing === "block" ? { group: `${prefix}down_blocks.${down[1]}` } : {})
      })
      continue
    }
    const up = upsampler.exec(name)
    if (up !== null) {
      // The convolution reads the up-sampled map, one level up.
      units.push({
        saved: (shapes.get(name)?.[1] ?? 0) * pixelsAt(size, upLevel(Number(up[1])) - 1),
        input: 0,
        ...(checkpointing === "block" ? { group: `${prefix}up_blocks.${up[1]}` } : {})
      })
    }
  }
  return units
}

/** GroupNorm in and out and SiLU's output before a `conv_out` at `level`. */
const outputUnit = (parameters: ReadonlyArray<ParameterInfo>, name: string, size: LatentSize, level: number): Array<Unit> => {
  const channels = parameters.find((q) => q.name === name)?.shape[1] ?? 0
  return [{ saved: 3 * channels * pixelsAt(size, level), input: 0 }]
}

/** The UNet's saved values per sample at `latent` (the latent height and width), attending to `contextTokens` prompt tokens. */
export const unetActivations = (parameters: ReadonlyArray<ParameterInfo>, latent: LatentSize, contextTokens: number): ActivationCount =>
  countOf([...blockUnits(parameters, "", latent, "module", contextTokens), ...outputUnit(parameters, "conv_out.weight", latent, 0)])

/** A VAE's saved values per image of `image` pixels, encoding and decoding (the reconstruction objective). */
export const vaeActivations = (parameters: ReadonlyArray<ParameterInfo>, image: LatentSize): ActivationCount => {
  const depth = Math.log2(vaeScaleFactor(parameters))
  return countOf([
    ...blockUnits(parameters, "encoder.", image, "block"),
    ...outputUnit(parameters, "encoder.conv_out.weight", image, depth),
    ...blockUnits(parameters, "decoder.", image, "block"),
    ...outputUnit(parameters, "decoder.conv_out.weight", image, 0)
  ])
}

const LAYER = /^(.*encoder\.layers\.(\d+))\.self_attn\.q_proj\.weight$/

/** A CLIP text encoder's saved values per prompt, when it trains. */
export const textEncoderActivations = (parameters: ReadonlyArray<ParameterInfo>): ActivationCount => {
  const tokens = promptTokens(parameters)
  const units = parameters.flatMap((p): Array<Unit> => {
    if (!LAYER.test(p.name)) return []
    const width = p.shape[0] ?? 0
    return [{ saved: 21 * width * tokens, input: width * tokens, group: p.name }]
  })
  return countOf(units)
}

/** How many times a VAE halves the image (its encoder's down-samplers). */
export const vaeScaleFactor = (parameters: ReadonlyArray<ParameterInfo>): number =>
  2 ** new Set(parameters.flatMap((p) => /^encoder\.down_blocks\.(\d+)\.downsamplers\./.exec(p.name)?.[1] ?? [])).size
