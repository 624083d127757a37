/**
 * What bench/gpu/bench.py measures, resolved by sardine's own declaration code, written to
 * bench/gpu/configuration.json so that the GPU machine (Python only, no Node) trains exactly what sardine
 * would: the paper's hybrid (experiments/paper/hybrid.ts: full UNet, LoRA on both text encoders, a learned
 * `<SAR>` token) resolved for SDXL, its training settings at batch 1 and 4 with gradient checkpointing off
 * and on, and `sardine plan --resources`' memory estimate of each (framework/plan/memory-plan.ts), printed
 * beside the measured peak. The same for the tiny SDXL fixture that `--tiny` runs on CPU.
 *
 *   npx tsx bench/gpu/configuration.ts          rewrites configuration.json
 *   npx tsx bench/gpu/configuration.ts --check  exits 1 when configuration.json differs from what it would write
 *
 * test/bench-gpu/bench-gpu.test.ts checks that the committed file is current.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Schema } from "effect"
import hybrid from "../../experiments/paper/hybrid.ts"
import { resolveAdaptation } from "../../framework/declaration/adaptation.ts"
import { Experiment } from "../../framework/declaration/experiment.ts"
import { Training } from "../../framework/declaration/training.ts"
import { memoryPlan } from "../../framework/plan/memory-plan.ts"
import { architectureOf } from "../../test/plan/memory-plan-support.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
export const configurationFile = join(root, "bench/gpu/configuration.json")

/** The model each mode builds (configs only: bench.py seeds the weights) and the side of its training images. */
const models = {
  sdxl: { architecture: "experiments/architectures/sdxl", resolution: 1024 },
  tiny: { architecture: "test/fixtures/pipelines/sdxl-tiny", resolution: 32 }
} as const

const BATCHES = [1, 4] as const
const CHECKPOINTING = [false, true] as const

/** The configuration as JSON text (stable key order, two-space indent, final newline). */
export const configurationText = async (): Promise<string> => {
  const experiment = Schema.decodeUnknownSync(Experiment)(hybrid)
  const adaptation = resolveAdaptation(experiment.components, "sdxl")
  const declared = hybrid.train!
  // One optimiser step per micro-batch (the declared accumulation would only repeat it); no validation images,
  // no mid-run checkpoint: bench.py measures the training step. `steps` is set by bench.py.
  const trainFor = (batchSize: number, gradientCheckpointing: boolean) =>
    Schema.decodeUnknownSync(Training)({
      ...declared,
      steps: 1,
      batchSize,
      gradientAccumulation: 1,
      gradientCheckpointing,
      validationPrompts: [],
      checkpointEvery: 1_000_000
    })
  const modes: Record<string, unknown> = {}
  for (const [mode, { architecture, resolution }] of Object.entries(models)) {
    const parameters = await architectureOf(join(root, architecture))
    const configurations = BATCHES.flatMap((batchSize) =>
      CHECKPOINTING.map((gradientCheckpointing) => {
        const train = trainFor(batchSize, gradientCheckpointing)
        const plan = memoryPlan({ architecture: parameters, adaptation, train, resolution })
        return {
          name: `batch ${batchSize}, checkpointing ${gradientCheckpointing ? "on" : "off"}`,
          batchSize,
          gradientCheckpointing,
          train,
          plannedBytes: plan.total,
          plannedTerms: plan.terms
        }
      })
    )
    modes[mode] = { architecture, resolution, configurations }
  }
  return JSON.stringify({ experiment: "experiments/paper/hybrid.ts", adaptation, modes }, null, 2) + "\n"
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = await configurationText()
  if (process.argv.includes("--check")) {
    if (readFileSync(configurationFile, "utf8") !== text) {
      console.error(`${configurationFile} is out of date: run npx tsx bench/gpu/configuration.ts`)
      process.exit(1)
    }
  } else {
    writeFileSync(configurationFile, text)
    console.log(`wrote ${configurationFile}`)
  }
}
