import { spawn } from "node:child_process"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { configurationFile, configurationText } from "../../bench/gpu/configuration.ts"
import { referencePython } from "../support/reference-python.ts"
import { repoRoot } from "../support/run-process.ts"

/**
 * The GPU bench (bench/gpu/) as its own CPU test: `bash bench/gpu/run.sh --tiny` on the tiny SDXL fixture — real
 * processes, real torch: the worker's init-model and encode-latents, then for each of the four configurations the
 * worker's train operation and the bare diffusers + PEFT peer, each in its own Python process. Costs ≈ 2 min of
 * one core (nine Python processes, each importing torch and diffusers; ≈ 7 min at load 15 under nice).
 */

interface Side {
  readonly status: string
  readonly secondsPerStep: ReadonlyArray<number>
  readonly medianSecondsPerStep: number
  readonly imagesPerSecond: number
  readonly flops: number
  readonly modelFlops: number
  readonly mfu: number
  readonly hfu: number
  readonly peakBytes: number
  readonly loss: number
}
interface Row {
  readonly name: string
  readonly batchSize: number
  readonly gradientCheckpointing: boolean
  readonly plannedBytes: number
  readonly sardine: Side
  readonly peer: Side
  readonly ratio: number
}
interface Result {
  readonly model: string
  readonly steps: number
  readonly peakFlops: number
  readonly perImageModelFlops: number
  readonly environment: { readonly device: string; readonly versions: Record<string, string | null> }
  readonly configurations: ReadonlyArray<Row>
  readonly loadBefore: ReadonlyArray<number>
}

const runBench = (out: string) =>
  new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn("bash", [join(repoRoot, "bench/gpu/run.sh"), "--tiny", "--out", out, "--steps", "1", "--peak-tflops", "1"], {
      cwd: repoRoot,
      env: { ...process.env, SARDINE_PYTHON: referencePython(), SARDINE_TORCH_THREADS: "1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (d) => (output += String(d)))
    child.stderr.on("data", (d) => (output += String(d)))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, output }))
  })

const folders: Array<string> = []
afterAll(() => Promise.all(folders.map((f) => rm(f, { recursive: true, force: true }))))

describe("the GPU bench's configuration", () => {
  it("is what sardine's declarations and memory plan give now (npx tsx bench/gpu/configuration.ts rewrites it)", async () => {
    expect(await readFile(configurationFile, "utf8")).toBe(await configurationText())
  })
})

describe("bash bench/gpu/run.sh --tiny", () => {
  it("measures sardine's worker and the bare peer on every configuration, the FLOPs counted on the real step", async () => {
    const out = await mkdtemp(join(tmpdir(), "sardine-bench-gpu-"))
    folders.push(out)
    const { code, output } = await runBench(out)
    expect(code, output).toBe(0)
    const result = JSON.parse(await readFile(join(out, "bench-gpu.json"), "utf8")) as Result
    const configuration = JSON.parse(await readFile(configurationFile, "utf8")) as {
      modes: { tiny: { configurations: ReadonlyArray<{ name: string; plannedBytes: number }> } }
    }
    expect(result.model).toBe("test/fixtures/pipelines/sdxl-tiny")
    expect(result.environment.device).toBe("CPU")
    expect(result.environment.versions.diffusers).toMatch(/^\d+\.\d+/)
    expect(result.loadBefore).toHaveLength(3)
    expect(result.peakFlops).toBe(1e12)
    // Every configuration, most likely to fit first, with the memory plan's estimate beside it.
    expect(result.configurations.map((r) => r.name)).toEqual([
      "batch 1, checkpointing off",
      "batch 1, checkpointing on",
      "batch 4, checkpointing on",
      "batch 4, checkpointing off"
    ])
    const planned = new Map(configuration.modes.tiny.configurations.map((c) => [c.name, c.plannedBytes]))
    for (const row of result.configurations) {
      expect(row.plannedBytes).toBe(planned.get(row.name))
      for (const side of [row.sardine, row.peer]) {
        expect(side.status, JSON.stringify(side)).toBe("ok")
        expect(side.secondsPerStep).toHaveLength(result.steps)
        for (const value of [...side.secondsPerStep, side.imagesPerSecond, side.peakBytes, side.flops, side.mfu, side.hfu, side.loss]) {
          expect(Number.isFinite(value) && value > 0, `${row.name}: ${JSON.stringify(side)}`).toBe(true)
        }
        expect(side.imagesPerSecond).toBeCloseTo(row.batchSize / side.medianSecondsPerStep, 9)
        // Utilisation: FLOPs per second over the given peak (1 TFLOP/s).
        expect(side.hfu).toBeCloseTo(side.flops / side.medianSecondsPerStep / 1e12, 12)
        expect(side.mfu).toBeCloseTo(side.modelFlops / side.medianSecondsPerStep / 1e12, 12)
      }
      // The peer trains the same model the same way: FlopCounterMode counts the same FLOPs on its step.
      expect(row.peer.flops).toBe(row.sardine.flops)
      expect(row.ratio).toBeCloseTo(row.sardine.medianSecondsPerStep / row.peer.medianSecondsPerStep, 12)
    }
    const flops = (batch: number, checkpointing: boolean) =>
      result.configurations.find((r) => r.batchSize === batch && r.gradientCheckpointing === checkpointing)!.sardine.flops
    // The step's FLOPs grow with the batch, row for row; checkpointing recomputes the forward in the backward.
    expect(flops(4, false)).toBe(4 * flops(1, false))
    expect(flops(1, true)).toBeGreaterThan(flops(1, false))
    expect(flops(4, true)).toBeGreaterThan(flops(4, false))
    // The model's FLOPs (MFU's numerator) are the step's without recomputation.
    expect(result.perImageModelFlops).toBe(flops(1, false))
    const table = await readFile(join(out, "bench-gpu.md"), "utf8")
    expect(table).toContain("| configuration | sardine s/step | peer s/step | sardine / peer |")
    for (const row of result.configurations) expect(table).toContain(`| ${row.name} | ${row.sardine.medianSecondsPerStep.toFixed(3)} |`)
  }, 1_200_000)
})
