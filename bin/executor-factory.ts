import { Effect, Layer } from "effect"
import { realpathSync } from "node:fs"
import { resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { stepProcessExecutor } from "../adapters/processes/step-process-executor.ts"
import { localShell, sshShell } from "../adapters/slurm/shell.ts"
import { slurmExecutor } from "../adapters/slurm/slurm-executor.ts"
import { ExecutorError, ExecutorFactory, localExecutor } from "../framework/services/executor.ts"

type Env = Readonly<Record<string, string | undefined>>

/** The production `sardine` executable, which jobs run unless told otherwise. */
const defaultEntry = fileURLToPath(new URL("./sardine.js", import.meta.url))

/** Node on an entry script; a TypeScript entry is loaded through tsx, as bin/sardine.js does itself. */
const nodeEntry = (script: string): ReadonlyArray<string> =>
  /\.[mc]?ts$/.test(script) ? [process.execPath, "--import", import.meta.resolve("tsx"), script] : [process.execPath, script]

/** The command a job starts sardine with: node on the entry script (`SARDINE_SLURM_ENTRY`, default bin/sardine.js). */
export const jobEntry = (env: Env, cwd: string): ReadonlyArray<string> => nodeEntry(resolve(cwd, env.SARDINE_SLURM_ENTRY ?? defaultEntry))

/** A stopped step's process gets this long to release its lock and leave its work folder before it is killed. */
const stopGraceMs = 60_000

export interface ExecutorFactoryOptions {
  readonly env?: Env
  readonly cwd?: string
}

/**
 * The executors `sardine run --executor …` can use: the local runner, child processes of this one
 * (each runs the program this process runs), or SLURM. SLURM's settings
 * from the environment: `SARDINE_SLURM_POLL_MS` (milliseconds between looks at the queue, default
 * 5000), `SARDINE_SLURM_ENTRY` (see jobEntry), `SARDINE_SSH_COMMAND` (the ssh program and its
 * options for `--ssh`, like GIT_SSH_COMMAND; default `ssh`).
 */
export const executorFactoryLayer = (options: ExecutorFactoryOptions = {}): Layer.Layer<ExecutorFactory> =>
  Layer.succeed(ExecutorFactory, {
    open: (choice) =>
      Effect.gen(function*() {
        if (choice._tag === "local") return localExecutor
        // The program this process runs, found through links (npx runs sardine through one in its own cache).
        if (choice._tag === "processes") return stepProcessExecutor({ entry: nodeEntry(realpathSync(process.argv[1] ?? defaultEntry)), stopGraceMs })
        const env = options.env ?? process.env
        const cwd = options.cwd ?? process.cwd()
        const pollText = env.SARDINE_SLURM_POLL_MS ?? "5000"
        const pollMs = Number(pollText)
        if (!Number.isInteger(pollMs) || pollMs < 1) {
          return yield* Effect.fail(
            new ExecutorError({ executor: "slurm", reason: `SARDINE_SLURM_POLL_MS must be an integer ≥ 1 (got ${JSON.stringify(pollText)})` })
          )
        }
        const sshCommand = (env.SARDINE_SSH_COMMAND ?? "ssh").trim().split(/\s+/)
        const shellFor = (host: string | undefined) => host === undefined ? localShell : sshShell(host, sshCommand)
        return slurmExecutor({
          choice,
          shell: shellFor(choice.ssh),
          shellFor,
          entry: jobEntry(env, cwd),
          pollMs,
          workingDir: cwd
        })
      })
  })
