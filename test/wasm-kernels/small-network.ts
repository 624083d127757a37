import * as tf from "@tensorflow/tfjs-core"

/**
 * A small network with every operation a latent-diffusion UNet trains through, written with the
 * same tfjs calls the models make (fused conv2d / matMul with bias, explicit torch-style padding,
 * GroupNorm via reshape + moments, nearest 2× upsampling, multi-head attention, GEGLU, gathers):
 * the test of the wasm training kernels and their benchmark run its gradients on wasm and cpu.
 */
export interface SmallNetworkConfig {
  readonly batch: number
  /** Input height and width (even). */
  readonly size: number
  readonly inChannels: number
  /** Width of the two levels. */
  readonly channels: readonly [number, number]
  readonly groups: number
  readonly heads: number
  readonly contextLength: number
  readonly contextDim: number
  readonly vocabulary: number
  readonly timesteps: number
}

export const tinyNetwork: SmallNetworkConfig = {
  batch: 2,
  size: 8,
  inChannels: 4,
  channels: [8, 16],
  groups: 4,
  heads: 2,
  contextLength: 5,
  contextDim: 8,
  vocabulary: 12,
  timesteps: 10
}

export type Parameters = Record<string, tf.Variable>

export interface Batch {
  readonly x: tf.Tensor4D
  readonly target: tf.Tensor4D
  readonly tokens: tf.Tensor2D
  readonly timesteps: tf.Tensor1D
}

const PARAMETER_SHAPES = (c: SmallNetworkConfig): Record<string, Array<number>> => {
  const [c0, c1] = c.channels
  return {
    "token_embedding": [c.vocabulary, c.contextDim],
    "context_norm.weight": [c.contextDim],
    "context_norm.bias": [c.contextDim],
    "time_table": [c.timesteps, c0],
    "time_proj.weight": [c0, c1],
    "time_proj.bias": [c1],
    "conv_in.weight": [3, 3, c.inChannels, c0],
    "conv_in.bias": [c0],
    "res.norm1.weight": [c0],
    "res.norm1.bias": [c0],
    "res.conv1.weight": [3, 3, c0, c1],
    "res.conv1.bias": [c1],
    "res.norm2.weight": [c1],
    "res.norm2.bias": [c1],
    "res.conv2.weight": [3, 3, c1, c1],
    "res.conv2.bias": [c1],
    "res.shortcut.weight": [1, 1, c0, c1],
    "res.shortcut.bias": [c1],
    "down.weight": [3, 3, c1, c1],
    "down.bias": [c1],
    "down_asym.weight": [3, 3, c1, c1],
    "attn.norm.weight": [c1],
    "attn.norm.bias": [c1],
    "attn.proj_in.weight": [1, 1, c1, c1],
    "attn.proj_in.bias": [c1],
    "attn.ln1.weight": [c1],
    "attn.ln1.bias": [c1],
    "attn.self.q": [c1, c1],
    "attn.self.k": [c1, c1],
    "attn.self.v": [c1, c1],
    "attn.self.out.weight": [c1, c1],
    "attn.self.out.bias": [c1],
    "attn.ln2.weight": [c1],
    "attn.ln2.bias": [c1],
    "attn.cross.q": [c1, c1],
    "attn.cross.k": [c.contextDim, c1],
    "attn.cross.v": [c.contextDim, c1],
    "attn.cross.out.weight": [c1, c1],
    "attn.cross.out.bias": [c1],
    "attn.ln3.weight": [c1],
    "attn.ln3.bias": [c1],
    "attn.ff.proj.weight": [c1, 8 * c1],
    "attn.ff.proj.bias": [8 * c1],
    "attn.ff.out.weight": [4 * c1, c1],
    "attn.ff.out.bias": [c1],
    "attn.proj_out.weight": [1, 1, c1, c1],
    "attn.proj_out.bias": [c1],
    "up.weight": [3, 3, c1, c0],
    "up.bias": [c0],
    "merge.weight": [3, 3, 2 * c0, c0],
    "merge.bias": [c0],
    "out_norm.weight": [c0],
    "out_norm.bias": [c0],
    "conv_out.weight": [3, 3, c0, c.inChannels],
    "conv_out.bias": [c.inChannels]
  }
}

/** Parameters drawn from N(0, 1/fan_in) (norm scales around 1), each from its own seed derived from `seed`. */
export const initParameters = (c: SmallNetworkConfig, seed: number): Parameters =>
  Object.fromEntries(
    Object.entries(PARAMETER_SHAPES(c)).map(([name, shape], i) => {
      const fanIn = shape.length === 1 ? 1 : shape.slice(0, -1).reduce((a, b) => a * b, 1)
      const value = tf.tidy(() => {
        const noise = tf.randomNormal(shape, 0, 1 / Math.sqrt(fanIn), "float32", seed * 1000 + i)
        return name.endsWith("norm.weight") || /ln\d\.weight|norm\d\.weight/.test(name) ? tf.add(noise, 1) : noise
      })
      return [name, tf.variable(value, true, name)]
    })
  )

export const makeBatch = (c: SmallNetworkConfig, seed: number): Batch => ({
  x: tf.randomNormal([c.batch, c.size, c.size, c.inChannels], 0, 1, "float32", seed),
  target: tf.randomNormal([c.batch, c.size, c.size, c.inChannels], 0, 1, "float32", seed + 1),
  tokens: tf.randomUniform([c.batch, c.contextLength], 0, c.vocabulary, "int32", seed + 2),
  timesteps: tf.randomUniform([c.batch], 0, c.timesteps, "int32", seed + 3)
})

type Pad = "same" | "valid" | [[number, number], [number, number], [number, number], [number, number]]
const torchPad = (top: number, bottom: number, left: number, right: number): Pad => [[0, 0], [top, bottom], [left, right], [0, 0]]

const conv = (p: Parameters, name: string, x: tf.Tensor4D, stride: number, pad: Pad) => {
  const bias = p[`${name}.bias`]
  return tf.fused.conv2d({ x, filter: p[`${name}.weight`] as tf.Tensor4D, strides: stride, pad, ...(bias === undefined ? {} : { bias }) })
}

const linear = (x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor => {
  const inner = x.shape[x.rank - 1]!
  const y = tf.fused.matMul({ a: tf.reshape(x, [-1, inner]) as tf.Tensor2D, b: weight as tf.Tensor2D, ...(bias === undefined ? {} : { bias }) })
  return tf.reshape(y, [...x.shape.slice(0, -1), weight.shape[1] as number])
}

const silu = <T extends tf.Tensor>(x: T): T => tf.mul(x, tf.sigmoid(x))
const gelu = <T extends tf.Tensor>(x: T): T => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1))

const groupNorm = (p: Parameters, name: string, x: tf.Tensor4D, groups: number): tf.Tensor4D => {
  const [b, h, w, ch] = x.shape
  const grouped = tf.reshape(x, [b, h * w, groups, ch / groups])
  const { mean, variance } = tf.moments(grouped, [1, 3], true)
  const normed = tf.reshape(tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, 1e-6))), x.shape)
  return tf.add(tf.mul(normed, p[`${name}.weight`]!), p[`${name}.bias`]!)
}

const layerNorm = <T extends tf.Tensor>(p: Parameters, name: string, x: T): T => {
  const { mean, variance } = tf.moments(x, -1, true)
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), p[`${name}.weight`]!), p[`${name}.bias`]!)
}

const attention = (x: tf.Tensor3D, source: tf.Tensor3D, wq: tf.Tensor, wk: tf.Tensor, wv: tf.Tensor, heads: number): tf.Tensor3D => {
  const [batch, queries, inner] = x.shape
  const keys = source.shape[1]
  const d = inner / heads
  const split = (t: tf.Tensor, length: number) =>
    tf.reshape(tf.transpose(tf.reshape(t, [batch, length, heads, d]), [0, 2, 1, 3]), [batch * heads, length, d]) as tf.Tensor3D
  const q = split(tf.mul(linear(x, wq), 1 / Math.sqrt(d)), queries)
  const weights = tf.softmax(tf.matMul(q, split(linear(source, wk), keys), false, true))
  const out = tf.matMul(weights, split(linear(source, wv), keys))
  return tf.reshape(tf.transpose(tf.reshape(out, [batch, heads, queries, d]), [0, 2, 1, 3]), [batch, queries, inner])
}

/** The network's prediction for a batch. */
export const forward = (c: SmallNetworkConfig, p: Parameters, batch: Batch): tf.Tensor4D => {
  const [, c1] = c.channels
  const context = layerNorm(p, "context_norm", tf.gather(p.token_embedding!, batch.tokens))
  const temb = silu(linear(tf.gather(p.time_table!, batch.timesteps), p["time_proj.weight"]!, p["time_proj.bias"]))

  const h0 = conv(p, "conv_in", batch.x, 1, torchPad(1, 1, 1, 1))
  let h = conv(p, "res.conv1", silu(groupNorm(p, "res.norm1", h0, c.groups)), 1, "same")
  h = tf.add(h, tf.reshape(temb, [c.batch, 1, 1, c1]))
  h = conv(p, "res.conv2", silu(groupNorm(p, "res.norm2", h, c.groups)), 1, torchPad(1, 1, 1, 1))
  h = tf.add(conv(p, "res.shortcut", h0, 1, "valid"), h)

  // Both stride-2 paddings the models use: symmetric (UNet) and bottom/right only (VAE).
  const down: tf.Tensor4D = tf.add(
    conv(p, "down", h, 2, torchPad(1, 1, 1, 1)),
    tf.conv2d(h, p["down_asym.weight"] as tf.Tensor4D, 2, torchPad(0, 1, 0, 1))
  )

  const s = c.size / 2
  const normed = groupNorm(p, "attn.norm", down, c.groups)
  let t = tf.reshape(conv(p, "attn.proj_in", normed, 1, "valid"), [c.batch, s * s, c1]) as tf.Tensor3D
  const selfIn = layerNorm(p, "attn.ln1", t)
  t = tf.add(
    linear(attention(selfIn, selfIn, p["attn.self.q"]!, p["attn.self.k"]!, p["attn.self.v"]!, c.heads), p["attn.self.out.weight"]!, p["attn.self.out.bias"]),
    t
  )
  t = tf.add(
    linear(
      attention(layerNorm(p, "attn.ln2", t), context as tf.Tensor3D, p["attn.cross.q"]!, p["attn.cross.k"]!, p["attn.cross.v"]!, c.heads),
      p["attn.cross.out.weight"]!,
      p["attn.cross.out.bias"]
    ),
    t
  )
  const [value, gate] = tf.split(linear(layerNorm(p, "attn.ln3", t), p["attn.ff.proj.weight"]!, p["attn.ff.proj.bias"]), 2, -1) as [tf.Tensor, tf.Tensor]
  t = tf.add(linear(tf.mul(value, gelu(gate)), p["attn.ff.out.weight"]!, p["attn.ff.out.bias"]), t)
  const attended: tf.Tensor4D = tf.add(conv(p, "attn.proj_out", tf.reshape(t, [c.batch, s, s, c1]) as tf.Tensor4D, 1, "valid"), down)

  const up = conv(p, "up", tf.image.resizeNearestNeighbor(attended, [c.size, c.size]), 1, torchPad(1, 1, 1, 1))
  const merged = conv(p, "merge", tf.concat([up, h0], -1), 1, torchPad(1, 1, 1, 1))
  return conv(p, "conv_out", silu(groupNorm(p, "out_norm", merged, c.groups)), 1, torchPad(1, 1, 1, 1))
}

/** Mean squared error of the prediction, as the diffusion objective. */
export const loss = (c: SmallNetworkConfig, p: Parameters, batch: Batch): tf.Scalar => tf.mean(tf.squaredDifference(forward(c, p, batch), batch.target))
