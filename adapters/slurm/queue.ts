import { Effect } from "effect"
import { SlurmCommandError, type CommandResult, type Shell } from "./shell.ts"

/** A job as squeue or sacct report it. */
export interface JobState {
  readonly jobId: string
  /** PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, … ("CANCELLED by 0" → CANCELLED). */
  readonly state: string
  /** squeue's reason for a pending job (Dependency, Resources, …). */
  readonly reason?: string
  /** The exit code of an ended job, `<code>:<signal>` as sacct and scontrol print it. */
  readonly exitCode?: string
  /** Where the state came from. */
  readonly source: "squeue" | "sacct"
}

/** What SLURM says of some jobs. */
export interface JobStates {
  /** The jobs SLURM knows; a job neither squeue nor sacct knows is missing. */
  readonly states: ReadonlyMap<string, JobState>
  /**
   * Why sacct could not tell about the jobs the controller no longer holds (a cluster without
   * accounting: "Slurm accounting storage is disabled"); absent when it answered or was not needed.
   */
  readonly sacctUnavailable?: string
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

type Row = readonly [jobId: string, state: string, ...fields: Array<string>]

/** The output's lines as `|`-separated fields; a line without a job id and a state is refused, not guessed at. */
const parseLines = (shell: Shell, command: string, text: string): Effect.Effect<Array<Row>, SlurmCommandError> =>
  Effect.forEach(text.split("\n").map((l) => l.trim()).filter((l) => l.length > 0), (line) => {
    const [jobId, state, ...fields] = line.split("|")
    return jobId === undefined || state === undefined
      ? Effect.fail(new SlurmCommandError({ command, where: shell.where, reason: `unexpected output line: ${line}` }))
      : Effect.succeed<Row>([jobId, state, ...fields])
  })

/**
 * squeue's `exit_code` as `<code>:<signal>`: SLURM 22.05 prints the raw wait status (768 for exit 3,
 * 9 for SIGKILL); a form already split is kept.
 */
const exitCodeOf = (text: string | undefined): string | undefined => {
  if (text === undefined || text === "") return undefined
  if (!/^\d+$/.test(text)) return text
  const status = Number(text)
  const signal = status & 0x7f
  return signal === 0 ? `${(status >> 8) & 0xff}:0` : `0:${signal}`
}

/**
 * squeue knows the jobs still in the controller's memory (queued, running, or ended less than
 * MinJobAge ago — 300 s by default), with their exit codes: enough on a cluster without accounting.
 */
const fromSqueue = (shell: Shell, ids: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<JobState>, SlurmCommandError> =>
  shell.run(["squeue", "--noheader", "--states=all", `--jobs=${ids.join(",")}`, "--Format=JobID:|,State:|,exit_code:|,Reason:"]).pipe(
    Effect.flatMap((result) => {
      // squeue refuses a list made only of jobs it forgot; that means "none of them", not an error.
      if (result.code !== 0 && /Invalid job id/i.test(result.stderr)) return Effect.succeed([])
      if (result.code !== 0) return Effect.fail(failed(shell, "squeue", result))
      return parseLines(shell, "squeue", result.stdout).pipe(Effect.map((rows) =>
        rows.map(([jobId, state, exitCode, reason]): JobState => {
          const ended = isFinal(state) ? exitCodeOf(exitCode) : undefined
          return {
            jobId,
            state,
            ...(reason === undefined || reason === "" || reason === "None" ? {} : { reason }),
            ...(ended === undefined ? {} : { exitCode: ended }),
            source: "squeue"
          }
        })
      ))
    })
  )

/** sacct reads the accounting database: every job, long after the controller forgot it. */
const fromSacct = (shell: Shell, ids: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<JobState>, SlurmCommandError> =>
  shell.run(["sacct", "--noheader", "--parsable2", "--allocations", `--jobs=${ids.join(",")}`, "--format=JobID,State,ExitCode"]).pipe(
    Effect.flatMap((result) =>
      result.code !== 0
        ? Effect.fail(failed(shell, "sacct", result))
        : parseLines(shell, "sacct", result.stdout).pipe(Effect.map((rows) =>
          rows.map(([jobId, state, exitCode]): JobState => ({
            jobId,
            // "CANCELLED by 1000": the state is the first word (split gives at least one).
            state: state.split(" ")[0]!,
            ...(exitCode === undefined ? {} : { exitCode }),
            source: "sacct"
          }))
        ))
    )
  )

/**
 * The state of each job: squeue for the jobs the controller still holds (state and exit code),
 * sacct only for the ones it forgot, and only if it answers — small clusters run without
 * accounting, and a job the controller holds needs no database.
 */
export const jobStates = (shell: Shell, ids: ReadonlyArray<string>): Effect.Effect<JobStates, SlurmCommandError> =>
  Effect.gen(function*() {
    const states = new Map<string, JobState>()
    if (ids.length === 0) return { states }
    for (const job of yield* fromSqueue(shell, ids)) if (ids.includes(job.jobId)) states.set(job.jobId, job)
    const forgotten = ids.filter((id) => !states.has(id))
    if (forgotten.length === 0) return { states }
    return yield* fromSacct(shell, forgotten).pipe(
      Effect.map((jobs): JobStates => {
        for (const job of jobs) if (forgotten.includes(job.jobId)) states.set(job.jobId, job)
        return { states }
      }),
      // No accounting, the database unreachable, no sacct at all: squeue's word is all there is.
      Effect.catchAll((e) => Effect.succeed({ states, sacctUnavailable: e.message }))
    )
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
