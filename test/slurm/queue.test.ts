import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { jobStates } from "../../adapters/slurm/queue.ts"
import type { Shell } from "../../adapters/slurm/shell.ts"

/**
 * How squeue's output is read, without a cluster: a real squeue never prints a line without its `|`
 * separators, so that fault is produced by a shell that prints the given text as squeue's output
 * (named for what it fakes). Milliseconds.
 */
const fakeShellPrintingAsSqueue = (stdout: string): Shell => ({
  where: "locally",
  run: (argv) => Effect.succeed(argv[0] === "squeue" ? { code: 0, stdout, stderr: "" } : { code: 1, stdout: "", stderr: `${argv[0]}: not here` })
})

describe("squeue's output", () => {
  it("is read as job id | state | exit code | reason", async () => {
    const { states } = await Effect.runPromise(jobStates(fakeShellPrintingAsSqueue("12|COMPLETED|768|None\n13|PENDING||Resources\n"), ["12", "13"]))
    expect(states.get("12")).toEqual({ jobId: "12", state: "COMPLETED", exitCode: "3:0", source: "squeue" })
    expect(states.get("13")).toEqual({ jobId: "13", state: "PENDING", reason: "Resources", source: "squeue" })
  })

  it("a line without `|` is a named error, not a job whose state is undefined", async () => {
    const error = await Effect.runPromise(Effect.flip(jobStates(fakeShellPrintingAsSqueue("12|RUNNING||None\nslurm_load_jobs error\n"), ["12"])))
    expect(error._tag).toBe("SlurmCommandError")
    expect(error.message).toBe("squeue locally: unexpected output line: slurm_load_jobs error")
  })
})
