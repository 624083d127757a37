import { Effect, Layer } from "effect"
import { resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { ExecutorError, ExecutorFactory, localExecutor } from "../../framework/services/executor.ts"
import { localShell, sshShell } from "./shell.ts"
import { slurmExecutor } from "./slurm-executor.ts"

type Env = Readonly<Record<string, string | undefined>>

/** The production `sardine` executable, which jobs run unless told otherwise. */
const defaultEntry = fileURLToPath(new URL("../../bin/sardine.js", import.meta.url))

/**
 * The command a job starts sardine with: node on the entry script (`SARDINE_SLURM_ENTRY`, default
 * bin/sardine.js); a TypeScript entry is loaded through tsx, as bin/sardine.js does itself.
 */
export const jobEntry = (env: Env, cwd: string): ReadonlyArray<string> => {
  const script = resolve(cwd, env.SARDINE_SLURM_ENTRY ?? defaultEntry)
  return /\.[mc]?ts$/.test(script) ? [process.execPath, "--import", import.meta.resolve("tsx"), script] : [process.execPath, script]
}

export interface ExecutorFactoryOptions {
  readonly env?: Env
  readonly cwd?: string
}

/**
 * The executors `sardine run --executor …` can use: the local runner, or SLURM. SLURM's settings
 * from the environment: `SARDINE_SLURM_POLL_MS` (milliseconds between looks at the queue, default
 * 5000), `SARDINE_SLURM_ENTRY` (see jobEntry), `SARDINE_SSH_COMMAND` (the ssh program and its
 * options for `--ssh`, like GIT_SSH_COMMAND; default `ssh`).
 */
export const executorFactoryLayer = (options: ExecutorFactoryOptions = {}): Layer.Layer<ExecutorFactory> =>
  Layer.succeed(ExecutorFactory, {
    open: (choice) =>
      Effect.gen(function*() {
        if (choice._tag === "local") return localExecutor
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
