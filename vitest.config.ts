import { configDefaults, defineConfig } from "vitest/config"
import { LongFirstSequencer } from "./test/long-first-sequencer.ts"

/**
 * The fast tests that need no service — no MLflow server, no chromium, no SLURM, no Python, no `sardine`
 * process, no training run — which `npm run test:unit` runs (CONTRIBUTING.md). A test file not listed
 * here belongs to the "service" project: `npm test` runs both.
 */
const unit = [
  "test/metrics/**/*.test.ts",
  "test/wasm-kernels/**/*.test.ts",
  "test/fused-kernels/**/*.test.ts",
  "test/tokenizer/**/*.test.ts",
  "test/repo/**/*.test.ts",
  "test/cli/usage-errors.test.ts",
  "test/declaration/grid.test.ts",
  "test/declaration/adaptation.test.ts",
  // memory-plan-measured.test.ts runs Python and sardine processes: a service test.
  "test/plan/compile.test.ts",
  "test/plan/lora-rank-sweep.test.ts",
  "test/plan/memory-plan.test.ts",
  "test/plan/shared-training-resources.test.ts",
  "test/plan/architecture-fingerprint.test.ts",
  "test/slurm/resources.test.ts",
  "test/slurm/queue.test.ts",
  "test/slurm/time-limit.test.ts",
  "test/safetensors/safetensors.test.ts",
  "test/data/dataset-declaration.test.ts",
  "test/data/datasets.test.ts",
  "test/data/inspect.test.ts",
  "test/data/normalisation.test.ts",
  "test/images/image-io.test.ts",
  "test/sampling/gaussian-noise.test.ts",
  "test/sampling/schedulers.test.ts",
  "test/models/backend.test.ts",
  "test/models/pipeline-loader.test.ts",
  "test/models/config-keys.test.ts",
  "test/models/config-refusals.test.ts",
  "test/models/config-guards.test.ts",
  "test/clip/onnx-clip-scorer.test.ts",
  "test/clip-model/clip-model.test.ts",
  "test/clip-model/clip-scorer.test.ts",
  "test/clip-model/shipped-demo-clips.test.ts",
  "test/clip-model/prompt-following-shuffle.test.ts",
  "test/training/reference-math.test.ts",
  "test/training/cpu-kernel-fixes.test.ts",
  "test/training/lora.test.ts",
  "test/training/engine-files.test.ts",
  "test/demo-base/bpe-trainer.test.ts",
  "test/export/export-command.test.ts",
  "test/export/json-text.test.ts",
  "test/reports/chart-primitives.test.ts",
  "test/reports/caption-scene.test.ts",
  "test/reports/prompt-readings.test.ts",
  "test/controlnet/controlnet-parity.test.ts",
  "test/controlnet/conditioning-declaration.test.ts",
  "test/controlnet/condition-data.test.ts",
  "test/controlnet/paired-metrics.test.ts",
  "test/reliability/unreadable-files.test.ts"
]

/**
 * Files run elsewhere: `.ci/test-lanes.sh` runs these in a vitest of their own beside the rest (vitest's
 * `--exclude` does not reach the projects below), comma-separated.
 */
const runElsewhere = (process.env.SARDINE_TEST_EXCLUDE ?? "").split(",").filter((file) => file !== "")

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Tests start real processes and servers; two cores do not profit from more parallel files.
    maxWorkers: 2,
    minWorkers: 1,
    sequence: { sequencer: LongFirstSequencer },
    projects: [
      { extends: true, test: { name: "unit", include: unit, exclude: [...configDefaults.exclude, ...runElsewhere] } },
      {
        extends: true,
        test: {
          name: "service",
          include: ["test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, ...unit, ...runElsewhere],
          // Coordinates the real MLflow server of test/mlflow; starts nothing unless an MLflow test asks.
          globalSetup: ["test/mlflow/server.global-setup.ts"]
        }
      }
    ]
  }
})
