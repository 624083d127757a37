/**
 * Loading an SD-1.5-sized UNet: the bench writes a diffusers `unet/` folder with SD 1.5's config and a
 * float32 safetensors file with every real name and shape (3.4 GB of seeded random values, past the
 * 2 GiB mark) into a temporary folder, then loads it in fresh processes — sardine on each tfjs backend
 * and diffusers' UNet2DConditionModel.from_pretrained as the peer — and prints load time, peak RSS and
 * the ratios. The temporary folder is removed at the end.
 *
 *   npx tsx bench/load-unet.ts [--backends cpu,wasm]
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { fileURLToPath } from "node:url"
import { writeSafetensors } from "../adapters/safetensors/safetensors-writer.ts"
import { selectBackend } from "../adapters/tfjs/backend.ts"
import { disposeParameters } from "../adapters/tfjs/checkpoint.ts"
import { elementCount } from "../adapters/safetensors/safetensors-header.ts"
import { loadUnet2DCondition } from "../adapters/tfjs/pipeline-loader.ts"
import { decodeUnet2DConditionConfig, unet2dConditionSpecs } from "../adapters/tfjs/unet2d-condition.ts"

/** runwayml/stable-diffusion-v1-5 unet/config.json (the fields that shape the network). */
const SD15_UNET = {
  _class_name: "UNet2DConditionModel",
  act_fn: "silu",
  attention_head_dim: 8,
  block_out_channels: [320, 640, 1280, 1280],
  center_input_sample: false,
  cross_attention_dim: 768,
  down_block_types: ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  downsample_padding: 1,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 4,
  layers_per_block: 2,
  mid_block_scale_factor: 1,
  norm_eps: 1e-5,
  norm_num_groups: 32,
  out_channels: 4,
  sample_size: 64,
  up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
}

const repoRoot = fileURLToPath(new URL("..", import.meta.url))
const tsxLoader = new URL("../node_modules/tsx/dist/loader.mjs", import.meta.url).href

interface Measurement {
  readonly label?: string
  readonly seconds: number
  readonly peakRssMb: number
  readonly parameters: number
}

/** Child mode: load the folder on one backend and print what it took. */
const measure = async (folder: string, backend: string): Promise<Measurement> => {
  await Effect.runPromise(selectBackend(backend))
  const start = performance.now()
  const unet = await Effect.runPromise(loadUnet2DCondition(folder))
  const seconds = (performance.now() - start) / 1000
  const parameters = [...unet.parameters.values()].reduce((n, t) => n + t.size, 0)
  disposeParameters(unet.parameters)
  return { seconds, peakRssMb: process.resourceUsage().maxRSS / 1024, parameters }
}

/** Seeded uniform values in [-0.05, 0.05) (xorshift32): cheap, reproducible, not all equal. */
const randomValues = (count: number, seed: number): Float32Array => {
  const out = new Float32Array(count)
  let s = seed >>> 0 || 1
  for (let i = 0; i < count; i++) {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    out[i] = ((s >>> 0) / 4294967296 - 0.5) * 0.1
  }
  return out
}

const writeCheckpoint = async (folder: string): Promise<number> => {
  const plan = await Effect.runPromise(decodeUnet2DConditionConfig(SD15_UNET, "SD 1.5 unet/config.json"))
  const specs = unet2dConditionSpecs(plan)
  writeFileSync(join(folder, "config.json"), JSON.stringify(SD15_UNET, null, 2))
  await Effect.runPromise(writeSafetensors(
    join(folder, "diffusion_pytorch_model.safetensors"),
    specs.map((spec, i) => ({ name: spec.name, dtype: "F32" as const, shape: spec.shape, data: () => randomValues(elementCount(spec.shape), i + 1) }))
  ))
  return specs.reduce((n, s) => n + elementCount(s.shape), 0)
}

/** Runs a measuring process; each JSON line it prints is one measurement. */
const runChild = (command: string, args: ReadonlyArray<string>): Array<Measurement> | string => {
  const result = spawnSync(command, args, { cwd: repoRoot, encoding: "utf8", maxBuffer: 1 << 24 })
  const measurements = result.stdout.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as Measurement)
  return result.status === 0 && measurements.length > 0
    ? measurements
    : `failed (exit ${result.status}): ${(result.stderr || result.stdout).trim().split("\n").slice(-3).join(" | ")}`
}

if (process.argv[2] === "--child") {
  process.stdout.write(`${JSON.stringify(await measure(process.argv[3]!, process.argv[4]!))}\n`)
} else {
  const at = process.argv.indexOf("--backends")
  const backends = at >= 0 ? process.argv[at + 1]!.split(",") : ["cpu", "wasm"]
  const folder = mkdtempSync(join(tmpdir(), "sardine-bench-unet-"))
  try {
    const start = performance.now()
    const expected = await writeCheckpoint(folder)
    const size = statSync(join(folder, "diffusion_pytorch_model.safetensors")).size
    console.log(
      `wrote ${expected.toLocaleString("en-US")} parameters (${(size / 2 ** 30).toFixed(2)} GiB F32) in ${((performance.now() - start) / 1000).toFixed(1)} s`
    )
    const peer = runChild(join(repoRoot, ".venv/bin/python"), ["bench/load_unet_peer.py", folder])
    const rows: Array<[string, Measurement | string]> = typeof peer === "string"
      ? [["diffusers (peer)", peer]]
      : peer.map((m) => [m.label ?? "diffusers", m] as [string, Measurement])
    for (const backend of backends) {
      const result = runChild(process.execPath, ["--import", tsxLoader, "bench/load-unet.ts", "--child", folder, backend])
      rows.push([`sardine (${backend})`, typeof result === "string" ? result : result[0]!])
    }
    // The ratios compare with the peer once it has read every weight, as sardine's load does.
    const base = typeof peer === "string" ? undefined : peer[peer.length - 1]
    console.log("\nload of diffusion_pytorch_model.safetensors into UNet2DConditionModel (a fresh process each)")
    console.log(
      `${"".padEnd(36)}${"seconds".padStart(9)}${"peak RSS MB".padStart(13)}${"parameters".padStart(14)}${"time ×peer".padStart(12)}${"RSS ×peer".padStart(11)}`
    )
    for (const [label, m] of rows) {
      if (typeof m === "string") {
        console.log(`${label.padEnd(36)}${m}`)
        continue
      }
      const ratio = (a: number, b: number | undefined) => (b === undefined ? "" : (a / b).toFixed(2))
      console.log(
        `${label.padEnd(36)}${m.seconds.toFixed(2).padStart(9)}${m.peakRssMb.toFixed(0).padStart(13)}${m.parameters.toLocaleString("en-US").padStart(14)}` +
          `${ratio(m.seconds, base?.seconds).padStart(12)}${ratio(m.peakRssMb, base?.peakRssMb).padStart(11)}`
      )
      if (m.parameters !== expected) console.log(`  !! ${label} holds ${m.parameters} parameters, the file ${expected}`)
    }
  } finally {
    rmSync(folder, { recursive: true, force: true })
  }
}
