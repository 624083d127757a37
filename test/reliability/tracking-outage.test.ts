import { assert, afterEach, describe, expect, it } from "vitest"
import { existsSync } from "node:fs"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { type DedicatedServer, freePort, killServer, requireMlflowVenv, startServer, stopServer } from "../mlflow/mlflow-server.ts"
import { run, type Running } from "../support/run-process.ts"
import { range, serverRunsOf, setUpScenario, spoolSessions, startTracked, stopAll, trackedCli, until } from "./tracking-scenario.ts"

/*
 * Issue 17, item 4: a dying tracking server must not stall a run. Real `sardine run` processes, a real MLflow
 * server killed with SIGKILL (and restarted on its port, its database kept), a real closed port. Before the
 * tracking queue, the first scenario took 15 minutes (each image upload retried for 3 minutes), the second
 * kept retrying for minutes after Ctrl-C, the third gave up only after 3 minutes, silently, and nothing that
 * was lost was ever sent again. Each test costs one or two server starts (~5 s each on a quiet machine); the
 * signal test runs twice (SIGINT, SIGTERM).
 */

const sardine = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => run(trackedCli, args, { env })
const lines = (text: string, pattern: RegExp) => text.split("\n").filter((l) => pattern.test(l))

describe("a run whose MLflow server dies", { timeout: 600_000 }, () => {
  const servers: Array<DedicatedServer> = []
  const serve = async (dir: string, port?: number) => {
    requireMlflowVenv()
    const server = await startServer(join(dir, "server"), port ?? await freePort())
    servers.push(server)
    return server
  }
  const started: Array<Running> = []
  afterEach(async () => {
    await stopAll(started)
    for (const server of servers.splice(0)) await stopServer(server)
  })

  it("goes on when the server is killed before its images are logged, and the rerun sends what it missed", async () => {
    const { cache, dir, file, gate, name } = await setUpScenario("dying")
    const server = await serve(dir)
    const first = startTracked(started, ["run", file, "--cache-dir", cache, "--tracking-uri", server.uri], { TRACKED_STEPS_GATE: gate })
    await until(() => existsSync(`${gate}.waiting`), "generate to reach its images", first)
    await killServer(server)
    await writeFile(gate, "")
    const ran = await first.done
    expect(ran.code, ran.stderr).toBe(0)
    expect(ran.stdout).toContain(`${name}: 7 ran, 0 cached, 0 failed, 0 blocked`)
    // One line when the server stops answering, one at the end saying where the rest waits and what sends it.
    const spool = join(cache, "tracking", "spool")
    expect(lines(ran.stderr, /tracking paused, \d+ item\(s\) queued/)).toHaveLength(1)
    expect(ran.stderr).toMatch(
      new RegExp(`\\d+ tracking item\\(s\\) not sent to ${server.uri}: they wait in ${spool}; the next run sends them, or \`sardine mlflow push ${cache}\``)
    )
    expect(await spoolSessions(cache)).toHaveLength(1)

    await startServer(server.dir, server.port)
    const rerun = await sardine(["run", file, "--cache-dir", cache, "--tracking-uri", server.uri])
    expect(rerun.code, rerun.stderr).toBe(0)
    expect(rerun.stdout).toContain(`${name}: 0 ran, 7 cached, 0 failed, 0 blocked`)
    expect(rerun.stderr).toMatch(/sending \d+ tracking item\(s\) that earlier runs left in/)
    // Said at start, before sending: how much waits, of which run, for which store.
    expect(rerun.stderr).toMatch(
      new RegExp(
        `tracking spool ${spool}: [1-9]\\d* item\\(s\\), \\d+\\.\\d MB, of run\\(s\\) ${name} wait for ${server.uri} \\(the oldest since 20\\S+\\): sent first`
      )
    )
    const [stored, ...others] = await serverRunsOf(server.uri, name)
    assert.isDefined(stored)
    expect(others).toHaveLength(0)
    expect(stored.images).toHaveLength(4)
    expect(stored.lossSteps).toEqual(range(1, 20))
    expect(stored.status).toBe("FINISHED")
    expect(await spoolSessions(cache)).toHaveLength(0)
  })

  // SIGTERM (timeout, kill, scancel) stops the way Ctrl-C does: the runner's signal handling interrupts the run,
  // and the tracking queue's closing leaves what the dead server did not get in the spool.
  it.each([["SIGINT", 130], ["SIGTERM", 143]] as const)(
    "stops at once on %s with a dead server; the spool keeps the rest and `sardine mlflow push` sends it",
    async (signal, code) => {
      const { cache, dir, file, name } = await setUpScenario(signal.toLowerCase())
      const server = await serve(dir)
      const victim = startTracked(started, ["run", file, "--cache-dir", cache, "--tracking-uri", server.uri], { TRACKED_STEPS_HOLD_AT: "12" })
      await until(() => victim.output().includes("holding at iteration 12"), "training to reach iteration 12", victim)
      await killServer(server)
      victim.child.kill(signal)
      const stopped = await victim.done
      expect(stopped.code, stopped.stderr).toBe(code)
      expect(stopped.stderr).toMatch(/tracking item\(s\) not sent to .*: they wait in/)
      expect(await spoolSessions(cache)).toHaveLength(1)

      await startServer(server.dir, server.port)
      const pushed = await sardine(["mlflow", "push", cache])
      expect(pushed.code, pushed.stderr).toBe(0)
      expect(pushed.stdout).toMatch(new RegExp(`pushed the tracking spool of ${cache} to ${server.uri}: [1-9]\\d* item\\(s\\) sent, 0 left`))
      const [stored] = await serverRunsOf(server.uri, name)
      assert.isDefined(stored)
      expect(stored.lossSteps).toEqual(range(1, 12))
      expect(stored.status).toBe("KILLED")
      expect(await spoolSessions(cache)).toHaveLength(0)
      const again = await sardine(["mlflow", "push", cache])
      expect(again.stdout).toContain("nothing to send")
    }
  )

  it("fails within its start budget on a closed port, showing each retry; --tracking-optional runs with tracking spooled", async () => {
    const { cache, dir, file, name } = await setUpScenario("closed")
    const port = await freePort()
    const uri = `http://127.0.0.1:${port}`
    const refused = await sardine(["run", file, "--cache-dir", cache, "--tracking-uri", uri])
    expect(refused.code).toBe(1)
    expect(lines(refused.stderr, new RegExp(`MLflow at ${uri} unreachable \\(.*ECONNREFUSED.*\\); retry \\d+ in`)).length).toBeGreaterThanOrEqual(3)
    expect(refused.stderr).toMatch(new RegExp(`error: cannot track to ${uri}: unreachable .* attempt\\(s\\) in .*add --tracking-optional`))
    // Nothing ran, and nothing of this run waits to be sent later.
    expect(existsSync(join(cache, "steps"))).toBe(false)
    expect(await spoolSessions(cache)).toHaveLength(0)

    const optional = await sardine(["run", file, "--cache-dir", cache, "--tracking-uri", uri, "--tracking-optional"])
    expect(optional.code, optional.stderr).toBe(0)
    expect(optional.stdout).toContain(`${name}: 7 ran, 0 cached`)
    expect(lines(optional.stderr, /tracking paused/)).toHaveLength(1)
    expect(await spoolSessions(cache)).toHaveLength(1)

    await serve(dir, port)
    const pushed = await sardine(["mlflow", "push", cache])
    expect(pushed.code, pushed.stderr).toBe(0)
    const [stored] = await serverRunsOf(uri, name)
    assert.isDefined(stored)
    expect(stored.lossSteps).toEqual(range(1, 20))
    expect(stored.images).toHaveLength(4)
    expect(stored.status).toBe("FINISHED")
  })
})
