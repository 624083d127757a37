/**
 * The wasm training kernels (adapters/tfjs/wasm-kernels) against wasm's own kernels, the pure-JS
 * cpu backend and PyTorch on the same inputs, in one run.
 *
 *   npx tsx bench/wasm-kernels.ts [--cpu-reps N]
 *   npx tsx bench/wasm-kernels.ts --unet-step [batch]
 *
 * The second form profiles one training step (forward, tf.variableGrads, Adam) of the tiny
 * UNet2DConditionModel of issue 7 (block_out_channels (32, 64), 2 layers per block, cross-attention
 * dim 32, 77 context tokens, 32 × 32 latents; batch 1 by default) on wasm with the training kernels,
 * and prints the step time and the time spent in each kernel (tf.profile), largest first.
 *
 * Shapes are DESIGN §4's (activations 8 × 32 × 32 × 64, 3 × 3 convolution 64 → 64), the stride-2
 * downsampler on them, a Linear layer's two gradient products on the same activations, the
 * attention products of the tiny UNet's 16 × 16 level (8 images × 8 heads, head width 8) and the
 * gradient of a CLIP token-embedding table (49 408 × 768, 8 prompts of 77 tokens).
 * Inputs are drawn from a seeded generator and written to a temporary folder that the peer
 * (bench/wasm_kernels_peer.py, torch on 1 and on 2 threads) reads; both sides print the sum of
 * each result's squares, so they really computed the same thing. Times are medians in ms (the machine is
 * shared: run it when it is quiet); ratio = sardine wasm / torch on 2 threads.
 */
import * as tf from "@tensorflow/tfjs-core"
import "@tensorflow/tfjs-backend-cpu"
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { registerWasmTrainingKernels } from "../adapters/tfjs/wasm-kernels/index.ts"
import { Effect } from "effect"
import { createRequire } from "node:module"
import { layersOf } from "../adapters/tfjs/layers.ts"
import { tfjsShape } from "../adapters/tfjs/layout.ts"
import { decodeUnet2DConditionConfig, unet2dCondition, unet2dConditionSpecs } from "../adapters/tfjs/unet2d-condition.ts"
import { median } from "./median.ts"

const root = fileURLToPath(new URL("..", import.meta.url))
const REPS = 7
const cpuRepsAt = process.argv.indexOf("--cpu-reps")
const CPU_REPS = cpuRepsAt >= 0 ? Number(process.argv[cpuRepsAt + 1]) : 1

/** Seeded normal values (LCG + Box–Muller). */
const normals = (count: number, seed: number): Float32Array => {
  let s = seed >>> 0
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32
  return Float32Array.from({ length: count }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()))
}

const B = 8, H = 32, W = 32, C = 64, HEADS_BATCH = 64, TOKENS = 256, HEAD_DIM = 8
const VOCAB = 49408, WIDTH = 768, IDS = 8 * 77

const inputs = {
  x: { shape: [B, H, W, C], values: normals(B * H * W * C, 1) },
  w: { shape: [3, 3, C, C], values: normals(9 * C * C, 2).map((v) => v / 24) },
  dy: { shape: [B, H, W, C], values: normals(B * H * W * C, 3) },
  dy2: { shape: [B, H / 2, W / 2, C], values: normals((B * H * W * C) / 4, 4) },
  linear: { shape: [C, C], values: normals(C * C, 5) },
  q: { shape: [HEADS_BATCH, TOKENS, HEAD_DIM], values: normals(HEADS_BATCH * TOKENS * HEAD_DIM, 6) },
  k: { shape: [HEADS_BATCH, TOKENS, HEAD_DIM], values: normals(HEADS_BATCH * TOKENS * HEAD_DIM, 7) },
  p: { shape: [HEADS_BATCH, TOKENS, TOKENS], values: normals(HEADS_BATCH * TOKENS * TOKENS, 8) },
  rows: { shape: [IDS, WIDTH], values: normals(IDS * WIDTH, 9) },
  ids: { shape: [IDS], values: Int32Array.from(normals(IDS, 10), (v) => Math.floor(Math.abs(v) * 20000) % VOCAB) }
} satisfies Record<string, { shape: Array<number>; values: Float32Array | Int32Array }>

type Tensors = Record<keyof typeof inputs, tf.Tensor>
const PAD_1 = [[0, 0], [1, 1], [1, 1], [0, 0]]
const conv = (stride: number) => ({ strides: stride, pad: PAD_1, dataFormat: "NHWC" })

interface Op {
  readonly name: string
  readonly run: (t: Tensors) => tf.Tensor
  /** Whether wasm ships a kernel of its own for it. */
  readonly wasmOwn: boolean
  readonly onCpu: boolean
}

const OPS: ReadonlyArray<Op> = [
  { name: "conv2d 3×3 s1 (forward, reference)", wasmOwn: true, onCpu: true, run: (t) => tf.conv2d(t.x as tf.Tensor4D, t.w as tf.Tensor4D, 1, PAD_1 as never) },
  {
    name: "Conv2DBackpropInput 3×3 s1",
    wasmOwn: true,
    onCpu: true,
    run: (t) => tf.engine().runKernel("Conv2DBackpropInput", { dy: t.dy, filter: t.w }, { ...conv(1), inputShape: [B, H, W, C] } as never) as tf.Tensor
  },
  // cpu's filter gradients take minutes here (218 s and 45 s measured): not run.
  {
    name: "Conv2DBackpropFilter 3×3 s1",
    wasmOwn: false,
    onCpu: false,
    run: (t) => tf.engine().runKernel("Conv2DBackpropFilter", { x: t.x, dy: t.dy }, { ...conv(1), filterShape: [3, 3, C, C] } as never) as tf.Tensor
  },
  {
    name: "Conv2DBackpropInput 3×3 s2",
    wasmOwn: true,
    onCpu: true,
    run: (t) => tf.engine().runKernel("Conv2DBackpropInput", { dy: t.dy2, filter: t.w }, { ...conv(2), inputShape: [B, H, W, C] } as never) as tf.Tensor
  },
  {
    name: "Conv2DBackpropFilter 3×3 s2",
    wasmOwn: false,
    onCpu: false,
    run: (t) => tf.engine().runKernel("Conv2DBackpropFilter", { x: t.x, dy: t.dy2 }, { ...conv(2), filterShape: [3, 3, C, C] } as never) as tf.Tensor
  },
  {
    name: "BatchMatMul dy·Wᵀ (Linear dx)",
    wasmOwn: true,
    onCpu: true,
    run: (t) => tf.matMul(tf.reshape(t.dy, [-1, C]) as tf.Tensor2D, t.linear as tf.Tensor2D, false, true)
  },
  {
    name: "BatchMatMul xᵀ·dy (Linear dW)",
    wasmOwn: true,
    onCpu: true,
    run: (t) => tf.matMul(tf.reshape(t.x, [-1, C]) as tf.Tensor2D, tf.reshape(t.dy, [-1, C]) as tf.Tensor2D, true, false)
  },
  { name: "BatchMatMul q·kᵀ (64 × 256 × 8)", wasmOwn: true, onCpu: true, run: (t) => tf.matMul(t.q, t.k, false, true) },
  { name: "BatchMatMul pᵀ·q (attention dV)", wasmOwn: true, onCpu: true, run: (t) => tf.matMul(t.p, t.q, true, false) },
  // cpu's is a masked sum per segment, O(segments · rows · width): hours here.
  { name: "UnsortedSegmentSum 49408 × 768", wasmOwn: false, onCpu: false, run: (t) => tf.unsortedSegmentSum(t.rows, t.ids as tf.Tensor1D, VOCAB) }
]

/** Median ms of `reps` runs after one warm-up, and the sum of the result's squares (to compare with the peer's). */
const measure = (f: () => tf.Tensor, reps: number): { ms: number; sum: number } => {
  const warm = f()
  // In float64: a float32 sum of 4 M squares is off by a few 1e-3.
  const sum = (warm.dataSync() as Float32Array).reduce((acc, v) => acc + v * v, 0)
  warm.dispose()
  const times: Array<number> = []
  for (let i = 0; i < reps; i++) {
    const start = performance.now()
    const out = f()
    out.dataSync()
    times.push(performance.now() - start)
    out.dispose()
  }
  return { ms: median(times), sum }
}

const onBackend = async (backend: "cpu" | "wasm", ops: ReadonlyArray<Op>, reps: number) => {
  await tf.setBackend(backend)
  await tf.ready()
  // One tensor per input, under the input's name.
  const tensors = Object.fromEntries(
    Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.values, v.shape, v.values instanceof Int32Array ? "int32" : "float32")])
  ) as Tensors
  const results = new Map(ops.map((op) => [op.name, measure(() => op.run(tensors), reps)]))
  tf.dispose(Object.values(tensors))
  return results
}

const TINY_UNET = {
  block_out_channels: [32, 64],
  layers_per_block: 2,
  sample_size: 32,
  in_channels: 4,
  out_channels: 4,
  norm_num_groups: 32,
  down_block_types: ["CrossAttnDownBlock2D", "DownBlock2D"],
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D"],
  cross_attention_dim: 32
}

/** Per-kernel profile of one tiny-UNet training step on wasm. */
const profileUnetStep = async (batch: number) => {
  // tfjs-core's bundle registers no gradients; under tsx its ESM gradient files load through require.
  createRequire(import.meta.url)("@tensorflow/tfjs-core/dist/register_all_gradients.js")
  registerWasmTrainingKernels()
  await tf.setBackend("wasm")
  await tf.ready()
  const plan = await Effect.runPromise(decodeUnet2DConditionConfig(TINY_UNET, "tiny UNet"))
  const parameters = new Map(
    unet2dConditionSpecs(plan).map((spec, i) => {
      const shape = tfjsShape(spec)
      return [spec.name, tf.variable(tf.tensor(normals(tf.util.sizeFromShape(shape), 100 + i).map((v) => v * 0.05), shape), true, spec.name)] as const
    })
  )
  const layers = layersOf(parameters)
  const sample = tf.tensor4d(normals(batch * 32 * 32 * 4, 11), [batch, 32, 32, 4])
  const target = tf.tensor4d(normals(batch * 32 * 32 * 4, 12), [batch, 32, 32, 4])
  const encoderHiddenStates = tf.tensor3d(normals(batch * 77 * 32, 13), [batch, 77, 32])
  const timesteps = Array.from({ length: batch }, (_, i) => (i * 997) % 1000)
  const optimizer = tf.train.adam(1e-4)
  const step = () => {
    const { value, grads } = tf.variableGrads(() =>
      tf.mean(tf.squaredDifference(unet2dCondition(plan, layers, { sample, timesteps, encoderHiddenStates }), target)) as tf.Scalar
    )
    optimizer.applyGradients(Object.entries(grads).map(([name, tensor]) => ({ name, tensor })))
    tf.dispose(grads)
    return value
  }
  const times: Array<number> = []
  for (let i = 0; i < 4; i++) {
    const start = performance.now()
    step().dispose()
    times.push(performance.now() - start)
  }
  const profile = await tf.profile(step)
  const byKernel = new Map<string, { ms: number; calls: number }>()
  const byShape = new Map<string, number>()
  // "…__op" entries are custom-gradient ops wrapping kernels listed on their own: not counted twice.
  for (const k of profile.kernels.filter((k) => !k.name.endsWith("__op"))) {
    const key = `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join(" ")}`
    byShape.set(key, (byShape.get(key) ?? 0) + (k.kernelTimeMs as number))
    const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 }
    byKernel.set(k.name, { ms: entry.ms + (k.kernelTimeMs as number), calls: entry.calls + 1 })
  }
  const loads = (await import("node:os")).loadavg().map((l) => l.toFixed(1)).join(" ")
  console.log(`tiny UNet training step, batch ${batch}, wasm: ${times.slice(1).map((t) => t.toFixed(0)).join(", ")} ms (load average ${loads})`)
  console.log(`${"kernel".padEnd(26)}${"ms".padStart(9)}${"calls".padStart(7)}`)
  for (const [name, { ms, calls }] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 20)) {
    console.log(`${name.padEnd(26)}${ms.toFixed(1).padStart(9)}${String(calls).padStart(7)}`)
  }
  console.log("largest by input shapes:")
  for (const [key, ms] of [...byShape].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`${ms.toFixed(1).padStart(9)}  ${key}`)
}

const unetAt = process.argv.indexOf("--unet-step")
if (unetAt >= 0) {
  await profileUnetStep(Number(process.argv[unetAt + 1] ?? 1) || 1)
} else {
  const folder = mkdtempSync(join(tmpdir(), "sardine-bench-wasm-kernels-"))
  try {
    for (const [name, { values }] of Object.entries(inputs)) writeFileSync(join(folder, `${name}.bin`), values)
    writeFileSync(join(folder, "shapes.json"), JSON.stringify(Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.shape]))))
    const peer = JSON.parse(
      execFileSync(join(root, ".venv/bin/python"), [join(root, "bench/wasm_kernels_peer.py"), folder, String(REPS)], { encoding: "utf8" })
    ) as Record<string, { ms1: number; ms2: number; sum: number }>

    const wasmOwn = await onBackend("wasm", OPS.filter((op) => op.wasmOwn), Math.min(REPS, 3))
    registerWasmTrainingKernels()
    const ours = await onBackend("wasm", OPS, REPS)
    const cpu = await onBackend("cpu", OPS.filter((op) => op.onCpu), CPU_REPS)

    const cell = (v: number | undefined, width = 11) => (v === undefined ? "—" : v.toFixed(1)).padStart(width)
    console.log(`median ms; ratio = sardine wasm / torch 2 threads; load average ${(await import("node:os")).loadavg().map((l) => l.toFixed(1)).join(" ")}`)
    console.log(
      `${"".padEnd(38)}${"sardine".padStart(11)}${"wasm own".padStart(11)}${"cpu".padStart(11)}${"torch 1t".padStart(11)}${"torch 2t".padStart(11)}${
        "ratio".padStart(8)
      }  Σ out² (sardine | torch)`
    )
    for (const op of OPS) {
      const mine = ours.get(op.name)!
      const reference = peer[op.name]!
      console.log(
        `${op.name.padEnd(38)}${cell(mine.ms)}${cell(wasmOwn.get(op.name)?.ms)}${cell(cpu.get(op.name)?.ms)}${cell(reference.ms1)}${cell(reference.ms2)}` +
          `${(mine.ms / reference.ms2).toFixed(2).padStart(8)}  ${mine.sum.toPrecision(6)} | ${reference.sum.toPrecision(6)}`
      )
    }
  } finally {
    rmSync(folder, { recursive: true, force: true })
  }
}
