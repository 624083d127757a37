import { existsSync } from "node:fs"
import { mkdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { inject } from "vitest"
import { requirePrerequisite } from "../support/prerequisites.ts"
import { freePort, healthy, mlflowVenv, startServer } from "./server-process.ts"

export * from "./server-process.ts"

/*
 * Real MLflow servers for the tests. The shared one: MLFLOW_TEST_URI when set (`npm test` starts it),
 * otherwise started here on first use from the MLflow venv. A missing venv fails the tests that need a
 * server with the line that says how to make it, never a skip. Dedicated servers (for the restart and
 * auth tests) are started and stopped by the test itself, with server-process.ts.
 */

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
