import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { join } from "node:path"
import type { StepResources } from "../../framework/declaration/resources.ts"
import { ExecutorError } from "../../framework/services/executor.ts"
import { writeFileAtomically } from "../files/atomic-write-node.ts"
import { fileProblem, isNotFound } from "../../framework/files/file-errors.ts"
import { jobsDir } from "./job-records.ts"
import { batchScript, sbatchArguments } from "./job-script.ts"
import { logTail } from "./log-tail.ts"
import { cancel, isFinal, jobStates, submit, type JobState } from "./queue.ts"
import type { Shell } from "./shell.ts"

/** Where a successful check is remembered: a cache found shared stays shared. */
const memoFile = (cacheDir: string) => join(jobsDir(cacheDir), "shared-cache.json")

const fail = (reason: string) => new ExecutorError({ executor: "slurm", reason })

/** The file's text; undefined when it does not exist, an error naming it when it cannot be read. */
const readText = (file: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(file)).pipe(
    Effect.catchIf(isNotFound, () => Effect.succeed(undefined)),
    Effect.mapError((e) => fail(`cannot read ${file}: ${fileProblem(e)}`))
  )

/** The host a remembered probe answered for; a memo that is not what this module writes is only a reason to probe again. */
const rememberedHost = (memo: string): unknown => {
  try {
    const parsed: unknown = JSON.parse(memo)
    return typeof parsed === "object" && parsed !== null ? (parsed as { where?: unknown }).where : undefined
  } catch {
    return undefined
  }
}

/**
 * Checks that the compute nodes see the cache folder as this machine does: a tiny job writes a
 * marker file with a fresh token into the cache, and this side reads it back. Steps write their
 * outputs there, so without this check a study would run to the end and leave nothing here.
 * Done once per cache folder and submitting host; `note` tells the user what is being waited for.
 */
export const checkSharedCache = (
  shell: Shell,
  cacheDir: string,
  resources: Pick<StepResources, "partition" | "account">,
  pollMs: number,
  note: (message: string) => Effect.Effect<void>
): Effect.Effect<void, ExecutorError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const memo = yield* readText(memoFile(cacheDir))
    if (memo !== undefined && rememberedHost(memo) === shell.where) return

    const dir = join(jobsDir(cacheDir), "probes")
    yield* fs.makeDirectory(dir, { recursive: true }).pipe(Effect.mapError((e) => fail(`cannot create ${dir}: ${fileProblem(e)}`)))
    const token = randomUUID()
    const marker = join(dir, token)
    const log = join(dir, `${token}.out`)
    const script = batchScript(
      ["sh", "-c", `printf '%s\\n' "$1" > "$2.tmp" && mv "$2.tmp" "$2"`, "sardine-probe", token, marker],
      "sardine: is the cache folder shared with the compute nodes?"
    )
    const args = sbatchArguments({
      name: "sardine-probe",
      output: log,
      chdir: cacheDir,
      resources: { cpus: 1, time: "5", ...resources },
      after: []
    })
    const jobId = yield* Effect.uninterruptible(submit(shell, args, script)).pipe(Effect.mapError((e) => fail(e.message)))
    yield* note(`checking that the compute nodes see the cache folder: probe job ${jobId}`)

    const waitForEnd: Effect.Effect<JobState | undefined, ExecutorError> = Effect.gen(function*() {
      let told = ""
      for (;;) {
        const state = (yield* jobStates(shell, [jobId]).pipe(Effect.mapError((e) => fail(e.message)))).states.get(jobId)
        if (state === undefined || isFinal(state.state)) return state
        const now = `${state.state}${state.reason === undefined ? "" : ` (${state.reason})`}`
        if (now !== told) yield* note(`probe job ${jobId}: ${now}`)
        told = now
        yield* Effect.sleep(pollMs)
      }
    })
    const ended = yield* waitForEnd.pipe(
      Effect.onInterrupt(() => cancel(shell, [jobId]).pipe(Effect.ignore))
    )
    const seen = yield* readText(marker)
    if (seen?.trim() !== token) {
      const tail = yield* logTail(log, 10)
      return yield* Effect.fail(fail(
        `the cache folder ${cacheDir} is not shared with the compute nodes: probe job ${jobId} ` +
          `(${ended?.state ?? "no longer known to SLURM"}) was to write ${marker}, and this machine does not see it. ` +
          `Put the cache on a filesystem the nodes mount too (a shared home, project or scratch folder) with --cache-dir.` +
          ("tail" in tail ? `\nlast lines of ${log}:\n${tail.tail}` : "")
      ))
    }
    yield* Effect.forEach([marker, log], (file) =>
      fs.remove(file, { force: true }).pipe(Effect.mapError((e) => fail(`cannot remove the probe's ${file}: ${fileProblem(e)}`))))
    const file = memoFile(cacheDir)
    yield* writeFileAtomically(file, `${JSON.stringify({ where: shell.where, probeJob: jobId, checkedAt: new Date().toISOString() })}\n`).pipe(
      Effect.mapError((e) =>
        fail(`cannot write ${file}: ${e.message}`)
      )
    )
    yield* note(`the compute nodes see the cache folder (probe job ${jobId})`)
  })
