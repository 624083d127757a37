import { relative } from "node:path"
import { BaseSequencer, type TestSpecification } from "vitest/node"

/**
 * Starts the longest test files first. Vitest orders by the durations it cached on an earlier run, and
 * by file size on a clean clone (CI), where the ten-minute demo study (a short file) would start last
 * and leave one of the two workers idle at the end. These are the longest files of a CI run, longest
 * first; a stale list only costs ordering.
 */
const longest = [
  "test/demo/study.test.ts",
  "test/torch/equivalence.test.ts",
  "test/torch/controlnet.test.ts",
  "test/torch/data-parallel.test.ts",
  "test/torch/fsdp.test.ts",
  "test/reliability/tracking-outage.test.ts",
  "test/bench-gpu/bench-gpu.test.ts",
  "test/reports/report.test.ts",
  "test/torch/faults.test.ts",
  "test/demo-base/base-retrieval.test.ts",
  "test/torch/exports.test.ts",
  "test/onnx/onnx-generate.test.ts",
  "test/examples/tiny-controlnet.test.ts",
  "test/plan/memory-plan-measured.test.ts"
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
