import { execFile } from "node:child_process"
import { existsSync } from "node:fs"
import { mkdir, readFile, writeFile } from "node:fs/promises"
import { createServer } from "node:net"
import { join, resolve } from "node:path"
import { promisify } from "node:util"
import { inject } from "vitest"
import { requirePrerequisite } from "../support/prerequisites.ts"

/*
 * Real MLflow servers for the tests. The shared one: MLFLOW_TEST_URI when set (`npm test` starts it),
 * otherwise started here on first use from the MLflow venv. A missing venv fails the tests that need a
 * server with the line that says how to make it, never a skip. Dedicated servers (for the restart and
 * auth tests) are started and stopped by the test itself.
 */

export const repo = resolve(import.meta.dirname, "../..")
export const serverScript = join(repo, ".ci/mlflow-server.sh")
export const mlflowVenv = process.env.MLFLOW_VENV ?? join(repo, ".venv-mlflow")
export const mlflowPython = join(mlflowVenv, "bin/python")

const run = promisify(execFile)

export const healthy = async (uri: string): Promise<boolean> => {
  try {
    const res = await fetch(`${uri}/health`, { signal: AbortSignal.timeout(5000) })
    return res.ok && (await res.text()).trim() === "OK"
  } catch {
    return false
  }
}

export const freePort = (): Promise<number> =>
  new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => (typeof address === "object" && address !== null ? resolvePort(address.port) : reject(new Error("no port"))))
    })
  })

export interface DedicatedServer {
  readonly uri: string
  readonly dir: string
  readonly port: number
}

export const startServer = async (
  dir: string,
  port: number,
  options: { readonly basicAuthPassword?: string } = {}
): Promise<DedicatedServer> => {
  await mkdir(dir, { recursive: true })
  const args = [serverScript, "start", dir, String(port), ...(options.basicAuthPassword === undefined ? [] : ["--basic-auth"])]
  await run("bash", args, {
    env: {
      ...process.env,
      MLFLOW_VENV: mlflowVenv,
      ...(options.basicAuthPassword === undefined ? {} : { MLFLOW_AUTH_ADMIN_PASSWORD: options.basicAuthPassword })
    },
    timeout: 240_000
  })
  return { uri: `http://127.0.0.1:${port}`, dir, port }
}

export const stopServer = async (server: DedicatedServer): Promise<void> => {
  await run("bash", [serverScript, "stop", server.dir, String(server.port)])
}

/** SIGKILL to the server's whole process group: a crash, not a shutdown. */
export const killServer = async (server: DedicatedServer): Promise<void> => {
  const pid = Number((await readFile(join(server.dir, `server-${server.port}.pid`), "utf8")).trim())
  process.kill(-pid, "SIGKILL")
  for (let i = 0; i < 100 && await healthy(server.uri); i++) await new Promise((r) => setTimeout(r, 100))
}

/** Fails the calling test with the prerequisite's line when the MLflow venv is missing. */
export const requireMlflowVenv = (): void => requirePrerequisite("mlflow", join(mlflowVenv, "bin/mlflow"))

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Starts the shared server once per test run, whichever test file asks first. */
const startShared = async (): Promise<string> => {
  const state = inject("mlflowStateDir")
  const uriFile = join(state, "shared.uri")
  const errorFile = join(state, "shared.error")
  let owner = false
  try {
    await mkdir(join(state, "shared.lock"))
    owner = true
  } catch {
    // Another test file is starting it.
  }
  if (owner) {
    try {
      const server = await startServer(join(state, "shared"), await freePort())
      await writeFile(uriFile, server.uri)
      return server.uri
    } catch (error) {
      await writeFile(errorFile, String(error))
      throw error
    }
  }
  for (let i = 0; i < 2400; i++) {
    if (existsSync(uriFile)) return (await readFile(uriFile, "utf8")).trim()
    if (existsSync(errorFile)) throw new Error(`the shared MLflow server did not start: ${await readFile(errorFile, "utf8")}`)
    await sleep(100)
  }
  throw new Error("the shared MLflow server did not start within 4 minutes")
}

/** The shared server's URI; a missing MLflow venv fails with the prerequisite's line. */
export const sharedServerUri = async (): Promise<string> => {
  const given = process.env.MLFLOW_TEST_URI
  if (given !== undefined && given !== "") {
    if (await healthy(given)) return given.replace(/\/+$/, "")
    throw new Error(`MLFLOW_TEST_URI=${given} does not answer OK on /health`)
  }
  requireMlflowVenv()
  return startShared()
}
