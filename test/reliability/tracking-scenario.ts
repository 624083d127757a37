import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { existsSync } from "node:fs"
import { mkdtemp, readdir, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { canonicalJsonPretty } from "../../framework/declaration/canonical-json.ts"
import { decodeDeclaration, encodeDeclaration } from "../../framework/declaration/decode.ts"
import { getJson, listArtifacts, postJson, readHistory } from "../mlflow/read-back.ts"
import { validExperiment } from "../support/declarations.ts"
import { repoRoot, type Running, start } from "../support/run-process.ts"

/*
 * The tracking scenarios of issue 17 (items 4 and 8): `sardine run` as a real process, with the tracking test
 * steps (tracked-steps.ts) in place of the engine, against a real MLflow server. Used by the tests of this
 * folder and by bench/tracking-outage.ts.
 */

/** The real `sardine` command line with the tracking test steps. */
export const trackedCli = `${repoRoot}/test/reliability/sardine-with-tracked-steps.ts`

/** One experiment: 20 training iterations checkpointed every 10, then 4 samples (2 prompts × 2 seeds). */
export const trackedExperiment = (name: string) =>
  validExperiment({
    name,
    train: { steps: 20, checkpointEvery: 10, seed: 7 },
    generate: { prompts: ["SAR image of a field", "SAR image of a harbour"], seeds: [0, 1], steps: 4 }
  })

export interface Scenario {
  /** The experiment's name, also its MLflow experiment's: unique, so scenarios sharing a server do not meet. */
  readonly name: string
  readonly dir: string
  readonly file: string
  readonly cache: string
  /** TRACKED_STEPS_GATE: generate waits for this file before logging its images. */
  readonly gate: string
}

export const setUpScenario = async (label: string): Promise<Scenario> => {
  const name = `tracked-${label}-${randomBytes(3).toString("hex")}`
  const dir = await mkdtemp(join(tmpdir(), `sardine-tracking-${label}-`))
  const file = join(dir, "experiment.json")
  await writeFile(file, canonicalJsonPretty(encodeDeclaration(await Effect.runPromise(decodeDeclaration(trackedExperiment(name))))))
  return { name, dir, file, cache: join(dir, "cache"), gate: join(dir, "gate") }
}

/** Starts `sardine` with the tracking steps, and remembers the process so `stopAll` ends it if a test fails first. */
export const startTracked = (started: Array<Running>, args: ReadonlyArray<string>, env: Record<string, string> = {}): Running => {
  const running = start(trackedCli, args, { env })
  started.push(running)
  return running
}

/** SIGKILL to every process a test started that is still there (a held training waits forever). */
export const stopAll = async (started: Array<Running>) => {
  for (const running of started.splice(0)) {
    if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill("SIGKILL")
    await running.done
  }
}

export const until = async (condition: () => boolean | Promise<boolean>, what: string, running?: Running, limitMs = 600_000) => {
  const deadline = Date.now() + limitMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${running === undefined ? "" : `; output:\n${running.output()}`}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** What the server holds for a run of the scenario's experiment. */
export interface ServerRun {
  readonly runId: string
  readonly status: string
  readonly tags: Record<string, string>
  /** The steps of the `loss` history, in order, repeats included. */
  readonly lossSteps: ReadonlyArray<number>
  /** The full-size image artifacts (images/…png). */
  readonly images: ReadonlyArray<string>
}

/** Every run of an MLflow experiment (none when it does not exist yet). */
export const serverRunsOf = async (uri: string, experimentName: string): Promise<ReadonlyArray<ServerRun>> => {
  const found = await fetch(`${uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name=${encodeURIComponent(experimentName)}`)
  if (found.status === 404) return []
  const { experiment } = await getJson(uri, "experiments/get-by-name", { experiment_name: experimentName })
  const body = await postJson(uri, "runs/search", { experiment_ids: [experiment.experiment_id], max_results: 100 })
  const runs: Array<ServerRun> = []
  for (const run of body.runs ?? []) {
    const runId = run.info.run_id as string
    runs.push({
      runId,
      status: run.info.status,
      tags: Object.fromEntries((run.data?.tags ?? []).map((t: { key: string; value: string }) => [t.key, t.value])),
      lossSteps: (await readHistory(uri, runId, "loss")).map((p) => p.step),
      images: (await listArtifacts(uri, runId, "images")).map((a) => a.path).filter((p) => p.endsWith(".png"))
    })
  }
  return runs
}

/** The spool sessions a cache holds. */
export const spoolSessions = async (cache: string): Promise<ReadonlyArray<string>> => {
  const spool = join(cache, "tracking", "spool")
  return existsSync(spool) ? (await readdir(spool)).filter((n) => !n.startsWith(".")) : []
}

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
