import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { resolveAdaptation } from "../../framework/declaration/adaptation.ts"
import { memoryBytes } from "../../framework/declaration/resources.ts"
import { full, lora } from "../../framework/declaration/treatment.ts"
import { unetActivations } from "../../framework/plan/activation-estimate.ts"
import { memoryPlan, shortfall } from "../../framework/plan/memory-plan.ts"
import { repoRoot } from "../support/run-process.ts"
import { architectureOf, components, training } from "./memory-plan-support.ts"

/**
 * `sardine plan --resources`' arithmetic (framework/plan/memory-plan.ts, activation-estimate.ts) on the SDXL
 * architecture folder's configs: counts, bytes, verdicts. memory-plan-measured.test.ts checks it against
 * the torch engine, PEFT and measured memory. Costs < 1 s.
 */

describe("memory sizes", () => {
  it("reads SLURM's units as powers of 1024, megabytes without one", () => {
    expect([memoryBytes("80G"), memoryBytes("512M"), memoryBytes("512"), memoryBytes("1T"), memoryBytes("64K")]).toEqual([
      80 * 2 ** 30,
      512 * 2 ** 20,
      512 * 2 ** 20,
      2 ** 40,
      64 * 2 ** 10
    ])
  })
})

describe("parameter counts", () => {
  it("report the SDXL architecture's 2.57 G UNet parameters, frozen under LoRA, trainable in full", async () => {
    const architecture = await architectureOf(join(repoRoot, "experiments/architectures/sdxl"))
    const adaptation = resolveAdaptation(components({ unet: full({ lr: 1e-5 }) }), "sdxl")
    const plan = memoryPlan({ architecture, adaptation, train: training({ steps: 1, precision: "bf16" }), resolution: 1024 })
    const unet = plan.components.find((c) => c.component === "unet")!
    expect((unet.trainable / 1e9).toFixed(2)).toBe("2.57")
    expect(plan.latent).toEqual({ height: 128, width: 128 })
    // AdamW: 4 bytes of gradient and 8 of moments per trainable value; the full UNet's weights in fp32.
    expect(plan.terms.gradients).toBe(4 * unet.trainable)
    expect(plan.terms.optimizer).toBe(8 * unet.trainable)
    expect(plan.terms.weights).toBe(4 * unet.trainable)
  })
})

describe("the verdict", () => {
  it("refuses a full SDXL UNet with AdamW on a 24 GiB GPU, naming the optimizer states and what to change", async () => {
    const architecture = await architectureOf(join(repoRoot, "experiments/architectures/sdxl"))
    const input = {
      architecture,
      adaptation: resolveAdaptation(components({ unet: full({ lr: 1e-5 }) }), "sdxl"),
      train: training({ steps: 1, precision: "bf16", gradientCheckpointing: true }),
      resolution: 1024
    }
    const plan = memoryPlan(input)
    expect(plan.total).toBeGreaterThan(24 * 2 ** 30)
    const short = shortfall(input, plan)
    expect(short.largest).toBe("optimizer")
    expect(short.advice.join("\n")).toMatch(/train unet with LoRA instead of full[\s\S]*adamw8bit[\s\S]*FSDP/)
    // 8-bit moments take a quarter of AdamW's 8 bytes, plus the blockwise scales.
    const eight = memoryPlan({ ...input, train: training({ steps: 1, precision: "bf16", gradientCheckpointing: true, optimizer: { _tag: "adamw8bit" } }) })
    expect(eight.terms.optimizer).toBeLessThan(plan.terms.optimizer / 3.9)
    // LoRA on the UNet: the weights in bf16, almost nothing trains.
    const loraPlan = memoryPlan({ ...input, adaptation: resolveAdaptation(components({ unet: lora({ rank: 16, lr: 1e-4 }) }), "sdxl") })
    expect(loraPlan.total).toBeLessThan(24 * 2 ** 30)
  })

  it("counts fewer activations with gradient checkpointing, in proportion to the batch", async () => {
    const architecture = await architectureOf(join(repoRoot, "experiments/architectures/sdxl"))
    const counts = unetActivations(architecture.get("unet")!, { height: 128, width: 128 }, 77)
    expect(counts.checkpointed).toBeLessThan(counts.plain / 3)
    const adaptation = resolveAdaptation(components({ unet: lora({ rank: 4, lr: 1e-4 }) }), "sdxl")
    const at = (batchSize: number) => memoryPlan({ architecture, adaptation, train: training({ steps: 1, batchSize, precision: "bf16" }), resolution: 1024 })
    expect(at(4).terms.activations).toBe(4 * at(1).terms.activations)
    expect(at(1).terms.activations).toBe(2 * counts.plain)
    expect(at(1).activationsOtherwise).toBe(2 * counts.checkpointed)
  })
})
