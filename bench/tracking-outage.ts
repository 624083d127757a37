/**
 * Times what a dying MLflow server costs a run (issue 17, item 4), with a real server killed for real:
 *   dying   the server is killed (SIGKILL) just before generate logs its 4 images: seconds from the kill to exit
 *   sigint  the server is killed while training runs (held at iteration 12), Ctrl-C (SIGINT) 2 s later:
 *           seconds from the signal to exit
 *   closed  a port nothing listens on, from the start: seconds to exit, and the lines printed
 * Usage: npx tsx bench/tracking-outage.ts [dying|sigint|closed]…   (all three when none is named)
 * The run is `sardine run` with the tracking test steps (test/reliability/tracked-steps.ts).
 */
import { existsSync } from "node:fs"
import { readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { freePort, killServer, startServer } from "../test/mlflow/server-process.ts"
import { setUpScenario, trackedCli as cli, until } from "../test/reliability/tracking-scenario.ts"
import { start } from "../test/support/run-process.ts"

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

const withServer = async (name: string, env: (gate: string) => Record<string, string>, ready: (gate: string, output: string) => boolean) => {
  const { cache, dir, file, gate } = await setUpScenario(name)
  const server = await startServer(join(dir, "server"), await freePort())
  const began = Date.now()
  const run = start(cli, ["run", file, "--cache-dir", cache, "--tracking-uri", server.uri], { env: env(gate) })
  await until(() => ready(gate, run.output()), "the moment to kill the server", run)
  await killServer(server)
  return { began, killed: Date.now(), gate, run }
}

const dying = async () => {
  const t = await withServer("dying", (gate) => ({ TRACKED_STEPS_GATE: gate }), (gate) => existsSync(`${gate}.waiting`))
  await writeFile(t.gate, "")
  const result = await t.run.done
  return { ...t, ended: Date.now(), result }
}

const interrupted = async () => {
  const t = await withServer("sigint", () => ({ TRACKED_STEPS_HOLD_AT: "12" }), (_, output) => output.includes("holding at iteration 12"))
  await new Promise((r) => setTimeout(r, 2000))
  const signalled = Date.now()
  t.run.child.kill("SIGINT")
  const result = await t.run.done
  return { ...t, signalled, ended: Date.now(), result }
}

const scenarios: Record<string, () => Promise<string>> = {
  dying: async () => {
    const t = await dying()
    return `dying: exit ${t.result.code} ${seconds(t.ended - t.killed)} after the kill (whole run ${seconds(t.ended - t.began)})\n` +
      t.result.stderr.split("\n").filter((l) => /mlflow|tracking/i.test(l)).slice(0, 12).join("\n")
  },
  sigint: async () => {
    const t = await interrupted()
    return `sigint: exit ${t.result.code} ${seconds(t.ended - t.signalled)} after SIGINT (server killed 2 s before; whole run ${seconds(t.ended - t.began)})`
  },
  closed: async () => {
    const { cache, file } = await setUpScenario("closed")
    const began = Date.now()
    const result = await start(cli, ["run", file, "--cache-dir", cache, "--tracking-uri", `http://127.0.0.1:${await freePort()}`]).done
    return `closed: exit ${result.code} after ${seconds(Date.now() - began)}\n${(result.stdout + result.stderr).trim()}`
  }
}

for (const name of process.argv.length > 2 ? process.argv.slice(2) : Object.keys(scenarios)) {
  const load = (await readFile("/proc/loadavg", "utf8").catch(() => "?")).trim()
  console.log(`${await scenarios[name]!()}\n  (load average at the start: ${load})\n`)
}
