import { spawn, type ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "")
/** tsx's loader by absolute path, so scripts also run from another working directory. */
const tsxLoader = new URL("../../node_modules/tsx/dist/loader.mjs", import.meta.url).href

export interface ProcessResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export interface Running {
  readonly child: ChildProcess
  readonly done: Promise<ProcessResult>
  /** Everything the process printed so far. */
  readonly output: () => string
}

/** The command line that runs a Node program (TypeScript through tsx), for wrapping in another command. */
export const nodeCommand = (script: string, args: ReadonlyArray<string>): ReadonlyArray<string> => [process.execPath, "--import", tsxLoader, script, ...args]

/**
 * Starts a Node program (TypeScript through tsx) as a real process; with `wrapper`, inside that
 * command (`unshare …`), which is given the program's command line as its last arguments.
 */
export const start = (
  script: string,
  args: ReadonlyArray<string>,
  options: { cwd?: string; env?: Record<string, string>; wrapper?: ReadonlyArray<string> } = {}
): Running => {
  const [file, ...argv] = [...(options.wrapper ?? []), ...nodeCommand(script, args)]
  if (file === undefined) throw new Error("no command to start")
  const child = spawn(file, argv, {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, CI: "true", ...options.env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (d) => (stdout += String(d)))
  child.stderr!.on("data", (d) => (stderr += String(d)))
  const done = new Promise<ProcessResult>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })))
  return { child, done, output: () => stdout + stderr }
}

export const run = (
  script: string,
  args: ReadonlyArray<string>,
  options: { cwd?: string; env?: Record<string, string>; wrapper?: ReadonlyArray<string> } = {}
) => start(script, args, options).done

/** The real `sardine` command. */
export const sardine = (args: ReadonlyArray<string>, options: { cwd?: string; env?: Record<string, string> } = {}) =>
  run(`${repoRoot}/bin/sardine.ts`, args, options)
