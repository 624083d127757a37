import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { resolveAdaptation } from "../../framework/declaration/adaptation.ts"
import { full, lora } from "../../framework/declaration/treatment.ts"
import { memoryPlan, shortfall } from "../../framework/plan/memory-plan.ts"
import { repoRoot } from "../support/run-process.ts"
import { architectureOf, components, training } from "./memory-plan-support.ts"

/**
 * The memory plan under `resources.train.sharding: "fsdp"` (memory-plan.ts): the full UNet's weights,
 * gradients and AdamW states divide by the process count, the gathered FSDP units are added; a full SDXL
 * UNet fine-tune refused on one 80 GiB GPU fits sharded over 8. Costs < 1 s.
 */

const gib = 2 ** 30

describe("the memory plan with FSDP sharding", () => {
  const sdxl = join(repoRoot, "experiments/architectures/sdxl")
  // bf16 autocast, AdamW, no checkpointing, 8 images per GPU at 1024².
  const inputOn = async (processes: number, sharding: "none" | "fsdp") => ({
    architecture: await architectureOf(sdxl),
    adaptation: resolveAdaptation(components({ unet: full({ lr: 1e-5 }) }), "sdxl"),
    train: training({ steps: 1, precision: "bf16", batchSize: 8 * processes }),
    resolution: 1024,
    processes,
    sharding
  })

  it("divides the full UNet's weights, gradients and optimizer states by the processes and adds the gathered units", async () => {
    const one = memoryPlan(await inputOn(1, "none"))
    const sharded = memoryPlan(await inputOn(8, "fsdp"))
    expect(one.shardedOver).toBe(1)
    expect(one.terms.gathered).toBe(0)
    expect(sharded.shardedOver).toBe(8)
    expect(sharded.microBatch).toBe(one.microBatch)
    expect(sharded.terms.weights).toBeCloseTo(one.terms.weights / 8, 0)
    expect(sharded.terms.gradients).toBeCloseTo(one.terms.gradients / 8, 0)
    expect(sharded.terms.optimizer).toBeCloseTo(one.terms.optimizer / 8, 0)
    expect(sharded.terms.activations).toBe(one.terms.activations)
    // The units sharding.py makes, grouped here from the listing by name segments: each resnet, each transformer
    // block, the rest of each attention, the rest of each block, the root; 4 bytes × (root + 3 × largest unit).
    const units = new Map<string, number>()
    for (const p of (await architectureOf(sdxl)).get("unet")!) {
      const parts = p.name.split(".")
      const block = parts[0] === "mid_block" ? 1 : parts[0] === "down_blocks" || parts[0] === "up_blocks" ? 2 : 0
      const layer = parts[block] === "resnets"
        ? block + 2
        : parts[block] === "attentions"
        ? (parts[block + 2] === "transformer_blocks" ? block + 4 : block + 2)
        : block
      const unit = block === 0 ? "root" : parts.slice(0, layer).join(".")
      units.set(unit, (units.get(unit) ?? 0) + p.shape.reduce((a, b) => a * b, 1))
    }
    const root = units.get("root")!
    units.delete("root")
    const largest = Math.max(...units.values())
    expect(sharded.terms.gathered).toBe(4 * (root + 3 * largest))
    // A unit is a small part of the UNet, or sharding would gain little.
    expect(largest).toBeLessThan(one.components.find((c) => c.component === "unet")!.trainable / 50)
    console.log(`SDXL UNet: ${units.size + 1} FSDP units, root ${root}, largest ${largest} values; gathered ${(sharded.terms.gathered / gib).toFixed(2)} GiB`)
  })

  it("a full SDXL UNet with AdamW refused on one 80 GiB GPU fits sharded over 8; the refusal says what sharding would need", async () => {
    const input = await inputOn(1, "none")
    const one = memoryPlan(input)
    expect(one.total).toBeGreaterThan(80 * gib)
    const advice = shortfall(input, one).advice.join("\n")
    const over8 = memoryPlan(await inputOn(8, "fsdp"))
    expect(over8.total).toBeLessThan(80 * gib)
    expect(advice).toContain(`shard the UNet with FSDP (resources.train.sharding: "fsdp")`)
    expect(advice).toContain(`8: ${(over8.total / gib).toFixed(2)} GiB`)
  })

  it("shards nothing when the UNet is not fully trained, and then does not advise it", async () => {
    const input = { ...(await inputOn(8, "fsdp")), adaptation: resolveAdaptation(components({ unet: lora({ rank: 4, lr: 1e-4 }) }), "sdxl") }
    const plan = memoryPlan(input)
    expect(plan.shardedOver).toBe(1)
    expect(plan.terms.gathered).toBe(0)
    expect(shortfall(input, plan).advice.join("\n")).not.toContain("FSDP")
  })
})
