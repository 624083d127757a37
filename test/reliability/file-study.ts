/**
 * The scenarios of test/reliability run the real `sardine` command line, as separate processes, on
 * a small study whose steps do small real work on files (test/runner/file-steps.ts): a study runs
 * in a few seconds and a training can be made slow enough to interrupt (FILE_STEPS_DELAY_MS).
 */
import { Effect } from "effect"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll } from "vitest"
import { canonicalJsonPretty } from "../../framework/declaration/canonical-json.ts"
import { decodeDeclaration, encodeDeclaration } from "../../framework/declaration/decode.ts"
import type { Plan } from "../../framework/plan/step.ts"
import { fileStudy } from "../support/declarations.ts"
import { planOf } from "../support/plan-of.ts"
import { repoRoot, run, start, type ProcessResult, type Running } from "../support/run-process.ts"

/** A test's time limit: these start many processes, a few seconds each on a quiet machine, far more on a busy one. */
export const minutes = (n: number) => n * 60_000

/** `sardine` with the file-working steps in place of the engine. */
export const cli = `${repoRoot}/test/runner/sardine-with-file-steps.ts`

const made: Array<string> = []
afterAll(() => Promise.all(made.map((dir) => rm(dir, { recursive: true, force: true }))))

/** A fresh folder, removed after the test file. */
export const scratch = async (name: string) => {
  const dir = await mkdtemp(join(tmpdir(), `sardine-${name}-`))
  made.push(dir)
  return dir
}

export interface FileStudy {
  readonly dir: string
  readonly file: string
  readonly cache: string
  readonly plan: Plan
  readonly keyOf: (id: string) => string
  /** `sardine <args> --cache-dir <cache>` (and the study's own MLflow folder for commands that track). */
  readonly sardine: (args: ReadonlyArray<string>, options?: { env?: Record<string, string>; wrapper?: ReadonlyArray<string> }) => Promise<ProcessResult>
  readonly startSardine: (args: ReadonlyArray<string>, options?: { env?: Record<string, string>; wrapper?: ReadonlyArray<string> }) => Running
}

const tracks = new Set(["run", "step", "verify"])

/** The three-experiment file study (two trainings of `trainSteps`, one baseline), written to study.json. */
export const fileStudyIn = async (name: string, trainSteps = 6): Promise<FileStudy> => {
  const dir = await scratch(name)
  const declaration = await Effect.runPromise(decodeDeclaration(fileStudy(trainSteps)))
  const file = join(dir, "study.json")
  await writeFile(file, canonicalJsonPretty(encodeDeclaration(declaration)))
  const plan = await planOf(file, declaration)
  const cache = join(dir, "cache")
  const argv = (args: ReadonlyArray<string>) => [...args, "--cache-dir", cache, ...(tracks.has(args[0]!) ? ["--tracking-uri", join(dir, "mlruns")] : [])]
  return {
    dir,
    file,
    cache,
    plan,
    keyOf: (id) => plan.steps.find((s) => s.id === id)!.key,
    sardine: (args, options = {}) => run(cli, argv(args), options),
    startSardine: (args, options = {}) => start(cli, argv(args), options)
  }
}

/** Waits (up to three minutes: process starts are slow on a busy machine) until the process printed something that matches. */
export const waitForOutput = async (process: Running, pattern: RegExp | string, what: string) => {
  const deadline = Date.now() + minutes(3)
  const seen = () => (typeof pattern === "string" ? process.output().includes(pattern) : pattern.test(process.output()))
  while (!seen()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output:\n${process.output()}`)
    if (process.child.exitCode !== null) throw new Error(`the process ended before ${what}; output:\n${process.output()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Waits (up to three minutes) for a condition on files. */
export const waitUntil = async (condition: () => boolean, what: string) => {
  const deadline = Date.now() + minutes(3)
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
