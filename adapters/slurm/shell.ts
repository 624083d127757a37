import { Effect, Schema } from "effect"
import { spawn } from "node:child_process"

/** A SLURM command that could not be run, or that failed. */
export class SlurmCommandError extends Schema.TaggedError<SlurmCommandError>()("SlurmCommandError", {
  command: Schema.String,
  /** "locally" or "on <host> (ssh)". */
  where: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.command} ${this.where}: ${this.reason}`
  }
}

export interface CommandResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Where SLURM's commands run: on this machine, or on a login node through ssh. */
export interface Shell {
  /** "locally" or "on <host> (ssh)", for messages. */
  readonly where: string
  /** The ssh host, when commands go through ssh. */
  readonly host?: string
  readonly run: (argv: ReadonlyArray<string>, stdin?: string) => Effect.Effect<CommandResult, SlurmCommandError>
}

/** Single-quotes a word for a POSIX shell (the remote side of ssh, a job script). */
export const shellQuote = (word: string): string => /^[A-Za-z0-9_\-+=/.,:@%]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`

const spawnCommand = (
  file: string,
  args: ReadonlyArray<string>,
  stdin: string | undefined,
  error: (reason: string) => SlurmCommandError
): Effect.Effect<CommandResult, SlurmCommandError> =>
  Effect.async<CommandResult, SlurmCommandError>((resume) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += String(d)))
    child.stderr.on("data", (d) => (stderr += String(d)))
    child.on("error", (e: NodeJS.ErrnoException) => resume(Effect.fail(error(e.code === "ENOENT" ? `${file} is not installed here (not on PATH)` : e.message))))
    child.on("close", (code, signal) => resume(Effect.succeed({ code: code ?? (signal === null ? 1 : 128), stdout, stderr })))
    // A command that reads no input (squeue, …) may close stdin first; that is not an error.
    child.stdin.on("error", () => undefined)
    child.stdin.end(stdin ?? "")
    return Effect.sync(() => child.kill("SIGTERM"))
  })

/** Runs SLURM's commands on this machine. */
export const localShell: Shell = {
  where: "locally",
  run: ([command = "", ...args], stdin) => spawnCommand(command, args, stdin, (reason) => new SlurmCommandError({ command, where: "locally", reason }))
}

/**
 * Runs SLURM's commands on `host` through ssh (non-interactive: keys or an agent, never a password
 * prompt). `sshCommand` is the ssh program with its options, like git's GIT_SSH_COMMAND.
 */
export const sshShell = (host: string, sshCommand: ReadonlyArray<string> = ["ssh"]): Shell => {
  const where = `on ${host} (ssh)`
  // An empty ssh command is the default one.
  const [ssh = "ssh", ...sshOptions] = sshCommand
  return {
    where,
    host,
    run: (argv, stdin) =>
      spawnCommand(
        ssh,
        [...sshOptions, "-o", "BatchMode=yes", host, "--", argv.map(shellQuote).join(" ")],
        stdin,
        (reason) => new SlurmCommandError({ command: argv[0] ?? "", where, reason })
      ).pipe(
        // ssh itself exits 255 when it cannot reach or log in to the host.
        Effect.flatMap((result) =>
          result.code === 255
            ? Effect.fail(new SlurmCommandError({ command: argv[0] ?? "", where, reason: `ssh failed: ${result.stderr.trim()}` }))
            : Effect.succeed(result)
        )
      )
  }
}
