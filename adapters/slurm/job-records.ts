import { FileSystem } from "@effect/platform"
import { Effect, Schema } from "effect"
import { join } from "node:path"
import { ExecutorError, JobAllocation } from "../../framework/services/executor.ts"
import { writeFileAtomically } from "../files/atomic-write-node.ts"
import { fileProblem, isNotFound } from "../../framework/files/file-errors.ts"

/**
 * `<cache>/jobs/<step key>.json`: the job a step was last submitted as, so `sardine status` and a
 * rerun find it (a rerun does not submit a step again while its job is queued or running).
 * Job output files go to `<cache>/jobs/logs/`.
 */
export const JobRecord = Schema.Struct({
  stepId: Schema.String,
  key: Schema.String,
  jobId: Schema.String,
  submittedAt: Schema.String,
  log: Schema.String,
  /** The ssh host the job was submitted through; absent when submitted on this machine. */
  ssh: Schema.optionalWith(Schema.String, { exact: true }),
  /** What the job asked for: GPUs, CPUs, memory (absent in records written before it was kept). */
  allocation: Schema.optionalWith(JobAllocation, { exact: true })
})
export type JobRecord = typeof JobRecord.Type

export const jobsDir = (cacheDir: string) => join(cacheDir, "jobs")
export const logsDir = (cacheDir: string) => join(cacheDir, "jobs", "logs")
const recordFile = (cacheDir: string, key: string) => join(jobsDir(cacheDir), `${key}.json`)

const fail = (reason: string) => new ExecutorError({ executor: "slurm", reason })

/** The record of a step, if it was ever submitted; a record that does not parse names its file. */
export const readJobRecord = (cacheDir: string, key: string): Effect.Effect<JobRecord | undefined, ExecutorError, FileSystem.FileSystem> => {
  const file = recordFile(cacheDir, key)
  return Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(file)).pipe(
    Effect.matchEffect({
      onFailure: (e) => isNotFound(e) ? Effect.succeed(undefined) : Effect.fail(fail(`${file}: cannot read: ${fileProblem(e)}`)),
      onSuccess: (text) =>
        Effect.try({ try: () => JSON.parse(text) as unknown, catch: (e) => fail(`${file}: not valid JSON: ${(e as Error).message}`) }).pipe(
          Effect.flatMap((json) => Schema.decodeUnknown(JobRecord)(json)),
          Effect.mapError((e) => e instanceof ExecutorError ? e : fail(`${file}: not a job record: ${e.message}`))
        )
    })
  )
}

/** Written to a temporary name and renamed, so a record is never seen half-written. */
export const writeJobRecord = (cacheDir: string, record: JobRecord): Effect.Effect<void, ExecutorError> => {
  const file = recordFile(cacheDir, record.key)
  return writeFileAtomically(file, `${JSON.stringify(record, null, 2)}\n`).pipe(
    Effect.mapError((e) => fail(`${file}: cannot write the job record: ${e.message}`))
  )
}
