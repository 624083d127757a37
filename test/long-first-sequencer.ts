import { relative } from "node:path"
import { BaseSequencer, type TestSpecification } from "vitest/node"

/**
 * Starts the longest test files first. Vitest orders by the durations it cached on an earlier run, and
 * by file size on a clean clone (CI), where a long short file (the demo study, the GPU bench's CPU run)
 * would start last and leave one of the two workers idle at the end. These are the files of a CI run that
 * took 35 s or more, longest first (seconds of the last full run on 2 loaded cores beside each, to reorder
 * by); a stale list only costs ordering.
 */
const longest = [
  "test/demo/study-tfjs.test.ts", // the demo study, cut to ≤ 450 s for both engines together
  "test/demo/study-torch.test.ts",
  "test/torch/equivalence.test.ts", // 327
  "test/torch/fsdp.test.ts", // 209
  "test/torch/data-parallel.test.ts", // 206
  "test/reliability/tracking-outage.test.ts", // 177
  "test/torch/controlnet.test.ts", // 158
  "test/torch/faults.test.ts", // 125
  "test/controlnet/controlnet-layout.test.ts", // 253 at load 2–3
  "test/bench-gpu/bench-gpu.test.ts", // 92
  "test/torch/exports.test.ts", // 91
  "test/reports/report.test.ts", // 90
  "test/plan/memory-plan-measured.test.ts", // 85
  "test/reliability/locks.test.ts", // 83
  "test/reliability/damaged-outputs.test.ts", // 68
  "test/runner/runner.test.ts", // 67
  "test/torch/engine-choice.test.ts", // 56
  "test/training/validation-loss.test.ts", // 54
  "test/reliability/input-fingerprints.test.ts", // 52
  "test/onnx/onnx-generate.test.ts", // 51
  "test/cli-generate/generate.test.ts", // 47
  "test/data/cli.test.ts", // 41
  "test/torch/init-model.test.ts", // 40
  "test/mlflow/auth-and-restart.test.ts", // 40
  "test/controlnet/controlnet-training.test.ts", // 39
  "test/cli-metrics/stats.test.ts", // 38
  "test/metrics/coverage.test.ts", // 35
  "test/examples/tiny-controlnet.test.ts" // 34
]

const rank = (root: string, spec: TestSpecification) => {
  const at = longest.indexOf(relative(root, spec.moduleId))
  return at === -1 ? longest.length : at
}

export class LongFirstSequencer extends BaseSequencer {
  override async sort(files: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    const sorted = await super.sort(files)
    const root = this.ctx.config.root
    // Array.prototype.sort is stable: the base order holds among the rest.
    return sorted.sort((a, b) => rank(root, a) - rank(root, b))
  }
}
