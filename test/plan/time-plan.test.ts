import { mkdtemp, readFile, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { resolveAdaptation } from "../../framework/declaration/adaptation.ts"
import { timeLimitSeconds } from "../../framework/declaration/resources.ts"
import { frozen, full, lora } from "../../framework/declaration/treatment.ts"
import { vaeScaleFactor } from "../../framework/plan/activation-estimate.ts"
import { textEncoderFlops, unetFlops, vaeFlops } from "../../framework/plan/flop-estimate.ts"
import { gpuPeaks, timePlan, timeWarning } from "../../framework/plan/time-plan.ts"
import { validExperiment } from "../support/declarations.ts"
import { repoRoot, sardine } from "../support/run-process.ts"
import { architectureOf, components, training } from "./memory-plan-support.ts"

/**
 * The time plan of `sardine plan --resources` (framework/plan/flop-estimate.ts, time-plan.ts): forward FLOPs
 * against torch's FlopCounterMode (test/fixtures/flops/forward-flops.json, written by
 * tools/make_flop_goldens.py), the training step's passes, the time estimate and its warning, the command
 * line. Costs ≈ 15 s (one `sardine plan` run; the rest < 2 s).
 */

interface Golden {
  readonly folder: string
  readonly resolution: number
  readonly tokens: number
  readonly forwardFlops: Record<string, number>
}

describe("forward FLOPs", () => {
  it("equal FlopCounterMode's counts for sd1-tiny, sdxl-tiny and the SDXL architecture at 1024², model by model", async () => {
    const goldens = JSON.parse(await readFile(join(repoRoot, "test/fixtures/flops/forward-flops.json"), "utf8")) as {
      pipelines: Record<string, Golden>
    }
    expect(Object.keys(goldens.pipelines)).toEqual(["sd1-tiny", "sdxl-tiny", "sdxl"])
    for (const golden of Object.values(goldens.pipelines)) {
      const architecture = await architectureOf(join(repoRoot, golden.folder))
      const image = { height: golden.resolution, width: golden.resolution }
      const side = golden.resolution / vaeScaleFactor(architecture.get("vae")!)
      const vae = vaeFlops(architecture.get("vae")!, image)
      const estimated: Record<string, number> = {
        "vae.encoder": vae.encoder.total,
        "vae.decoder": vae.decoder.total,
        unet: unetFlops(architecture.get("unet")!, { height: side, width: side }, golden.tokens).total
      }
      for (const encoder of ["text_encoder", "text_encoder_2"] as const) {
        const parameters = architecture.get(encoder)
        if (parameters !== undefined) estimated[encoder] = textEncoderFlops(parameters, golden.tokens).total
      }
      // What FlopCounterMode counts (matrix products, convolutions, attention products) is counted exactly.
      expect(estimated, golden.folder).toEqual(golden.forwardFlops)
    }
  })
})

describe("the training step", () => {
  const sdxl = join(repoRoot, "experiments/architectures/sdxl")
  const inputOf = async (adaptation: Parameters<typeof components>[0], train: Parameters<typeof training>[0], extra = {}) => ({
    architecture: await architectureOf(sdxl),
    adaptation: resolveAdaptation(components(adaptation), "sdxl"),
    train: training(train),
    resolution: 1024,
    ...extra
  })

  it("counts 3 forwards for a fully trained UNet, 2 where the gradient only passes, and the recomputed part under checkpointing", async () => {
    const architecture = await architectureOf(sdxl)
    const unet = unetFlops(architecture.get("unet")!, { height: 128, width: 128 }, 77)
    const plain = timePlan(await inputOf({ unet: full({ lr: 1e-5 }) }, { steps: 10, batchSize: 4, gradientAccumulation: 2 }))
    // The frozen text encoders come from the encode-text cache: only the UNet runs.
    expect(plain.models.map((m) => [m.model, m.passes])).toEqual([["unet", 3]])
    expect(plain.samplesPerStep).toBe(8)
    expect(plain.stepFlops).toBe(3 * unet.total * 8)
    const checkpointed = timePlan(await inputOf({ unet: full({ lr: 1e-5 }) }, { steps: 10, batchSize: 4, gradientCheckpointing: true }))
    expect(checkpointed.models[0]!.perSample).toBeCloseTo(3 * unet.total + unet.checkpointed, -3)
    // Almost all of a UNet's arithmetic is in its resnets and transformer blocks.
    expect(unet.checkpointed / unet.total).toBeGreaterThan(0.9)
    expect(unet.checkpointed).toBeLessThan(unet.total)
    const hybrid = timePlan(await inputOf({ unet: lora({ rank: 8, lr: 1e-4 }), textEncoders: lora({ rank: 4, lr: 1e-4 }) }, { steps: 10 }))
    expect(hybrid.models.map((m) => [m.model, m.passes])).toEqual([["unet", 2], ["text_encoder", 2], ["text_encoder_2", 2]])
  })

  it("estimates the time from the declared GPU's peak at the precision and the utilisation, or a declared peak", async () => {
    const bf16 = timePlan(await inputOf({ unet: full({ lr: 1e-5 }) }, { steps: 1000, batchSize: 8, precision: "bf16" }, { gpu: "H100", processes: 4 }))
    expect(bf16.peak?.flopsPerSecond).toBe(gpuPeaks.H100.bf16 * 1e12)
    expect(bf16.utilisation).toBe(0.35)
    expect(bf16.secondsPerStep).toBeCloseTo(bf16.stepFlops / (4 * 989.4e12 * 0.35), 9)
    expect(bf16.trainSeconds).toBeCloseTo(1000 * bf16.secondsPerStep!, 6)
    const fp32 = timePlan(await inputOf({ unet: full({ lr: 1e-5 }) }, { steps: 1000, batchSize: 8 }, { gpu: "H100", utilisation: 0.5 }))
    expect(fp32.peak?.flopsPerSecond).toBe(gpuPeaks.H100.fp32 * 1e12)
    expect(fp32.secondsPerStep).toBeCloseTo(fp32.stepFlops / (66.9e12 * 0.5), 9)
    const declared = timePlan(await inputOf({ unet: full({ lr: 1e-5 }) }, { steps: 1000, batchSize: 8 }, { gpu: "H100", gpuPeakTflops: 100 }))
    expect(declared.peak).toEqual({ flopsPerSecond: 100e12, source: "resources.train.gpuPeakTflops" })
    const none = timePlan(await inputOf({ unet: full({ lr: 1e-5 }) }, { steps: 1000, batchSize: 8 }))
    expect(none.secondsPerStep).toBeUndefined()
  })

  it("warns when the estimate exceeds the time limit, suggesting a checkpoint interval; not otherwise", async () => {
    const input = await inputOf({ unet: full({ lr: 1e-5 }) }, { steps: 100_000, batchSize: 8, precision: "bf16" }, { gpu: "H100" })
    const long = timePlan({ ...input, timeLimit: 3600 })
    const steps = Math.floor(1800 / long.secondsPerStep!)
    expect(timeWarning(long, 5000)).toContain(`declare train.checkpointEvery ≤ ${steps} (now 5000)`)
    expect(timeWarning(long, 5000)).toContain("exceeds resources.train.time (60.0 min) at 35 % utilisation")
    expect(timeWarning(long, 10)).toContain("train.checkpointEvery 10 keeps the loss small")
    expect(timeWarning(timePlan({ ...input, timeLimit: 1e9 }), 5000)).toBeUndefined()
    expect(timeWarning(timePlan(input), 5000)).toBeUndefined()
  })

  it("reads SLURM time limits", () => {
    expect(["90", "1:30", "4:00:00", "2-00:00:00", "1-2", "1-2:30"].map(timeLimitSeconds)).toEqual([5400, 90, 14400, 172800, 93600, 95400])
  })
})

describe("sardine plan --resources", () => {
  it("prints the FLOPs per step and the time estimate with its warning, and carries them in --json", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sardine-time-plan-"))
    const file = join(dir, "slow.json")
    await writeFile(
      file,
      JSON.stringify(validExperiment({
        components: { unet: full({ lr: 1e-4 }), vae: frozen(), textEncoders: frozen() },
        resources: { train: { gpuPeakTflops: 1e-9, time: "1" } }
      }))
    )
    const printed = await sardine(["plan", file, "--resources", "--cache-dir", join(dir, "cache")])
    expect(printed.code, printed.stderr).toBe(0)
    expect(printed.stdout).toMatch(/compute per training sample[\s\S]*unet .* × 3\.00[\s\S]*per step: [\d.]+ GFLOP \(1 samples/)
    expect(printed.stdout).toMatch(/estimated .* a step, .* in all, on 1 × 0\.0 TFLOP\/s \(resources\.train\.gpuPeakTflops\) at an assumed 35 % utilisation/)
    expect(printed.stdout).toContain("warning: the estimated ")
    const json = await sardine(["plan", file, "--resources", "--json", "--cache-dir", join(dir, "cache")])
    const parsed = JSON.parse(json.stdout) as { memory: Array<{ time: { stepFlops: number; secondsPerStep: number }; timeWarning: string }> }
    expect(parsed.memory[0]!.time.stepFlops).toBeGreaterThan(0)
    expect(parsed.memory[0]!.time.secondsPerStep).toBeCloseTo(parsed.memory[0]!.time.stepFlops / (1000 * 0.35), 6)
    expect(parsed.memory[0]!.timeWarning).toContain("train.checkpointEvery")
  }, 120_000)
})
