import { describe, expect, it } from "vitest"
import { timeLimitReached } from "../../adapters/slurm/time-limit.ts"

/**
 * What the SLURM executor says of a job stopped at its time limit, from what its step's work folder holds (the
 * cluster tests check it reads the folder: test/slurm/slurm-executor.test.ts, srun-training.test.ts). < 1 s.
 */
describe("a job stopped at its time limit", () => {
  it("a training that checkpointed resumes from that checkpoint", () => {
    expect(timeLimitReached("train", "90", 40)).toBe(
      "reached its time limit (resources.train.time \"90\") and was stopped; its checkpoint at step 40 is kept: `sardine run` again resumes it from there"
    )
  })

  it("a training stopped before its first checkpoint saved nothing and starts over", () => {
    expect(timeLimitReached("train", "90", undefined)).toBe(
      "reached its time limit (resources.train.time \"90\") and was stopped before its first checkpoint, so nothing was saved: " +
        "`sardine run` again starts it over (declare a longer resources.train.time, or checkpoint more often)"
    )
    expect(timeLimitReached("train-clip", undefined, undefined)).toBe(
      "reached its time limit (resources.train-clip.time \"the partition's\") and was stopped before its first checkpoint, so nothing was saved: " +
        "`sardine run` again starts it over (declare a longer resources.train-clip.time, or checkpoint more often)"
    )
  })

  it("any other step does not resume and starts over", () => {
    expect(timeLimitReached("generate", "30", undefined)).toBe(
      "reached its time limit (resources.generate.time \"30\") and was stopped; a generate step does not resume: `sardine run` again starts it over " +
        "(declare a longer resources.generate.time)"
    )
  })
})
