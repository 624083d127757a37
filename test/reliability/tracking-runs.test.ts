import { assert, afterEach, describe, expect, it } from "vitest"
import { sharedServerUri } from "../mlflow/mlflow-server.ts"
import { run, type Running } from "../support/run-process.ts"
import { range, serverRunsOf, setUpScenario, startTracked, stopAll, trackedCli, until } from "./tracking-scenario.ts"

/*
 * Issue 17, item 8: which MLflow run a run logs to, and what it logs there. Real `sardine run` processes
 * against the shared real MLflow server. Before: a training killed after iteration 12 and resumed from its
 * checkpoint at 10 logged iterations 11 and 12 twice; a second cache folder reused the first one's run (its
 * images added to the first's). About 4 short runs per test.
 */

const uri = await sharedServerUri()

describe("the MLflow runs of a run", { timeout: 300_000 }, () => {
  const server = uri
  const started: Array<Running> = []
  afterEach(() => stopAll(started))

  it("a training killed after iteration 12 and resumed from its checkpoint at 10 logs each iteration once", async () => {
    const { cache, file, name } = await setUpScenario("resume")
    const args = ["run", file, "--cache-dir", cache, "--tracking-uri", server]
    const victim = startTracked(started, args, { TRACKED_STEPS_HOLD_AT: "12" })
    await until(async () => (await serverRunsOf(server, name))[0]?.lossSteps.includes(12) === true, "iteration 12 on the server", victim)
    victim.child.kill("SIGKILL")
    await victim.done

    const resumed = await run(trackedCli, args)
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(resumed.stderr).toContain("resuming at iteration 10")
    const [stored, ...others] = await serverRunsOf(server, name)
    assert.isDefined(stored)
    expect(others).toHaveLength(0)
    expect(stored.lossSteps).toEqual(range(1, 20))
    expect(stored.status).toBe("FINISHED")
  })

  it("a forced rerun gets a run of its own, tagged as a rerun of the one before, which later runs reuse", async () => {
    const { cache, file, name } = await setUpScenario("force")
    const args = ["run", file, "--cache-dir", cache, "--tracking-uri", server]
    for (const extra of [[], ["--force", "train"], []]) {
      const ran = await run(trackedCli, [...args, ...extra])
      expect(ran.code, ran.stderr).toBe(0)
    }
    const runs = await serverRunsOf(server, name)
    expect(runs).toHaveLength(2)
    const rerun = runs.find((r) => r.tags["sardine.rerunOf"] !== undefined)
    const before = runs.find((r) => r.tags["sardine.rerunOf"] === undefined)
    assert.isDefined(rerun)
    assert.isDefined(before)
    expect(rerun.tags["sardine.rerunOf"]).toBe(before.runId)
    // Each run holds one training's iterations, once: the rerun's were not dropped as already logged, nor added to the first's.
    expect(before.lossSteps).toEqual(range(1, 20))
    expect(rerun.lossSteps).toEqual(range(1, 20))
    // The first run keeps what only it logged (the samples, not generated again); both ended.
    expect(before.images).toHaveLength(4)
    expect(rerun.images).toHaveLength(0)
    expect([before.status, rerun.status]).toEqual(["FINISHED", "FINISHED"])
  })

  it("a second cache folder gets its own run; each cache finds its own again", async () => {
    const first = await setUpScenario("caches")
    const caches = [first.cache, `${first.dir}/second-cache`]
    // The same declaration (same content keys), two caches; the first is run again.
    for (const cache of [...caches, first.cache]) {
      const ran = await run(trackedCli, ["run", first.file, "--cache-dir", cache, "--tracking-uri", server])
      expect(ran.code, ran.stderr).toBe(0)
    }
    const runs = await serverRunsOf(server, first.name)
    expect(runs.map((r) => r.tags["sardine.cache"]).sort()).toEqual([...caches].sort())
    for (const stored of runs) {
      expect(stored.images).toHaveLength(4)
      expect(stored.lossSteps).toEqual(range(1, 20))
    }
  })
})
