import { Effect } from "effect"
import { SlurmCommandError, type CommandResult, type Shell } from "./shell.ts"

/** A job as squeue or sacct report it. */
export interface JobState {
  readonly jobId: string
  /** PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, … ("CANCELLED by 0" → CANCELLED). */
  readonly state: string
  /** squeue's reason for a pending job (Dependency, Resources, …). */
  readonly reason?: string
  /** sacct's exit code, `<code>:<signal>`. */
  readonly exitCode?: string
  /** Where the state came from. */
  readonly source: "squeue" | "sacct"
}

/** States after which a job never runs again (SLURM's job state codes). */
const finalStates = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMEOUT",
  "OUT_OF_MEMORY",
  "NODE_FAIL",
  "PREEMPTED",
  "BOOT_FAIL",
  "DEADLINE",
  "REVOKED",
  "SPECIAL_EXIT"
])

export const isFinal = (state: string): boolean => finalStates.has(state)

const failed = (shell: Shell, command: string, result: CommandResult) =>
  new SlurmCommandError({
    command,
    where: shell.where,
    reason: `exit ${result.code}: ${(result.stderr.trim() || result.stdout.trim()).split("\n").slice(-3).join(" | ")}`
  })

/**
 * Submits a batch script (given on stdin) and returns the job id. `--parsable` prints
 * `<id>[;<cluster>]`.
 */
export const submit = (shell: Shell, args: ReadonlyArray<string>, script: string): Effect.Effect<string, SlurmCommandError> =>
  shell.run(["sbatch", "--parsable", ...args], script).pipe(
    Effect.flatMap((result) => {
      const id = result.stdout.trim().split("\n").at(-1)?.split(";")[0] ?? ""
      return result.code === 0 && /^\d+$/.test(id) ? Effect.succeed(id) : Effect.fail(failed(shell, "sbatch", result))
    })
  )

const parseLines = (text: string) => text.split("\n").map((l) => l.trim()).filter((l) => l.length > 0).map((l) => l.split("|"))

/** squeue knows jobs still in the controller's memory (queued, running, or ended less than MinJobAge ago). */
const fromSqueue = (shell: Shell, ids: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<JobState>, SlurmCommandError> =>
  shell.run(["squeue", "--noheader", "--states=all", `--jobs=${ids.join(",")}`, "--format=%i|%T|%r"]).pipe(
    Effect.flatMap((result) => {
      // squeue refuses a list made only of jobs it forgot; that means "none of them", not an error.
      if (result.code !== 0 && /Invalid job id/i.test(result.stderr)) return Effect.succeed([])
      if (result.code !== 0) return Effect.fail(failed(shell, "squeue", result))
      return Effect.succeed(
        parseLines(result.stdout).map(([jobId, state, reason]): JobState => ({
          jobId,
          state,
          ...(reason === undefined || reason === "None" ? {} : { reason }),
          source: "squeue"
        }))
      )
    })
  )

/** sacct reads the accounting database: every job, with its final state and exit code. */
const fromSacct = (shell: Shell, ids: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<JobState>, SlurmCommandError> =>
  shell.run(["sacct", "--noheader", "--parsable2", "--allocations", `--jobs=${ids.join(",")}`, "--format=JobID,State,ExitCode"]).pipe(
    Effect.flatMap((result) =>
      result.code !== 0
        ? Effect.fail(failed(shell, "sacct", result))
        : Effect.succeed(
          parseLines(result.stdout).map(([jobId, state, exitCode]): JobState => ({
            jobId,
            state: state.split(" ")[0],
            exitCode,
            source: "sacct"
          }))
        )
    )
  )

/**
 * The state of each job: squeue for the jobs it still holds, sacct for final states and exit
 * codes. A job neither knows is missing from the result.
 */
export const jobStates = (shell: Shell, ids: ReadonlyArray<string>): Effect.Effect<ReadonlyMap<string, JobState>, SlurmCommandError> =>
  Effect.gen(function*() {
    const states = new Map<string, JobState>()
    if (ids.length === 0) return states
    for (const job of yield* fromSqueue(shell, ids)) if (ids.includes(job.jobId)) states.set(job.jobId, job)
    const settled = ids.filter((id) => states.get(id) === undefined || isFinal(states.get(id)!.state))
    if (settled.length > 0) {
      // A job squeue still shows as ended may not have reached the accounting database yet: keep squeue's word then.
      for (const job of yield* fromSacct(shell, settled)) {
        if (settled.includes(job.jobId) && (isFinal(job.state) || !states.has(job.jobId))) states.set(job.jobId, job)
      }
    }
    return states
  })

/** Cancels jobs; ones that already ended are no error. */
export const cancel = (shell: Shell, ids: ReadonlyArray<string>): Effect.Effect<void, SlurmCommandError> =>
  ids.length === 0
    ? Effect.void
    : shell.run(["scancel", ...ids]).pipe(
      Effect.flatMap((result) =>
        result.code === 0 || /already completing or completed|Invalid job id/i.test(result.stderr)
          ? Effect.void
          : Effect.fail(failed(shell, "scancel", result))
      )
    )
