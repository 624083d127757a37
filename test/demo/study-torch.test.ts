import { describe, it } from "vitest"
import { expectCompleteRun, expectPixelStrategiesAheadOfBaseline, runCutDownDemo } from "./cut-down-demo.ts"

/**
 * experiments/demo/study.ts cut down (cut-down-demo.ts) on the torch engine: its results must show what
 * the tfjs engine's show (study-tfjs.test.ts).
 */

// The VAE alone, and the UNet with the text encoder and the token (the hybrid): each kind of pixel-shaping
// training; each Python step costs a worker start, so the torch copy runs the fewest strategies that show it.
const strategies = ["baseline", "full-vae", "hybrid"]

describe("experiments/demo/study.ts on the torch engine", () => {
  it(
    "cut down, runs through sardine run --engine torch: the strategies that fine-tune UNet or VAE beat the baseline on amplitude distances and follow their prompts (alignment gap above 0)",
    async () => {
      const run = await runCutDownDemo("torch", { steps: 60, keep: strategies, replicates: 1 })
      expectCompleteRun(run, strategies)
      expectPixelStrategiesAheadOfBaseline(run, strategies.slice(1))
    },
    1_200_000
  )
})
