import { execFile } from "node:child_process"
import { mkdir, readFile } from "node:fs/promises"
import { createServer } from "node:net"
import { join, resolve } from "node:path"
import { promisify } from "node:util"

/*
 * Dedicated real MLflow servers as processes (.ci/mlflow-server.sh): start, stop, kill. No vitest here, so
 * scripts outside the test runner (bench/tracking-outage.ts) use it too.
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
